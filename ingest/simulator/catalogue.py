"""Static vocabulary of the simulated shop: what people search for, who they are, what
software they use.

The search phrases deliberately include ordinary shopping text that a naive
signature engine mistakes for an attack (``men's shoes``, ``select comfort pillow``,
``exec chair``, ``wget tote bag``, ``drop earrings``, ``union jack flag``,
``<3 gift``): benign traffic must carry the traps a detector has to get right.
Queries are URL-encoded once, here, the way browsers send them.
"""

from __future__ import annotations

from urllib.parse import quote_plus

PRODUCT_BASE = 100_000
PRODUCTS = 20_000
"""Product ids run from ``PRODUCT_BASE`` to ``PRODUCT_BASE + PRODUCTS - 1``."""

SEARCH_PHRASES: tuple[str, ...] = (
    # Benign text that looks like SQL, shell or script to a signature engine.
    "men's shoes",
    "women's running shoes",
    "kids' rain boots",
    "select comfort pillow",
    "exec chair",
    "executive desk",
    "wget tote bag",
    "drop earrings",
    "drop leaf table",
    "union jack flag",
    "<3 gift",
    "i <3 ny mug",
    "o'neill wetsuit",
    "levi's 501",
    "script font stickers",
    "alert whistle",
    "table & chairs",
    "rock & roll t-shirt",
    "1/2 inch drill bit",
    "100% cotton t-shirt",
    "update planner 2024",
    "insert shelf",
    "delete key keyboard cover",
    "or gold necklace",
    "create your own puzzle",
    "sleep mask",
    "javascript for beginners",
    "cat /etc lamp",
    "-- dash pendant",
    "echo dot",
    "shell necklace",
    "bash boots",
    "ping pong table",
    "curl cream",
    "null cable",
    "admin desk organizer",
    "password book",
    "root beer",
    # Plain shopping.
    "wireless headphones",
    "noise cancelling headphones",
    "usb c charger",
    "running shoes",
    "yoga mat",
    "coffee grinder",
    "espresso machine",
    "air fryer",
    "standing desk",
    "office chair",
    "gaming mouse",
    "mechanical keyboard",
    "4k monitor",
    "phone case",
    "winter jacket",
    "rain jacket",
    "hiking boots",
    "backpack",
    "water bottle",
    "lego star wars",
    "board games",
    "baby stroller",
    "dog bed",
    "cat tree",
    "led desk lamp",
    "bluetooth speaker",
    "smart watch",
    "sunglasses",
    "wool socks",
    "bed sheets queen",
    "memory foam pillow",
    "cast iron pan",
    "chef knife",
    "vacuum cleaner",
    "robot vacuum",
    "electric toothbrush",
    "shampoo",
    "sunscreen spf 50",
    "protein powder",
    "dumbbells",
    "camping tent",
    "sleeping bag",
    "garden hose",
    "picture frame 8x10",
    "wall clock",
    "throw blanket",
    "kids bike",
    "scooter",
    "ipad case",
    "hdmi cable",
    "sd card 128gb",
    "printer ink",
    "notebook",
    "fountain pen",
    "jeans",
    "dress shirt",
    "summer dress",
    "gift card",
    "birthday gift for mom",
    # Non-ASCII and misspelt.
    "café table",
    "crème brûlée torch",
    "pokémon cards",
    "jalapeño hot sauce",
    "headphnes",
    "sheos",
)
"""Raw search text; the query parameter ``q`` carries it URL-encoded."""

SEARCH_QUERIES: tuple[str, ...] = tuple(f"q={quote_plus(p)}" for p in SEARCH_PHRASES)

CATEGORIES: tuple[str, ...] = (
    "shoes",
    "electronics",
    "home",
    "kitchen",
    "garden",
    "toys",
    "sports",
    "beauty",
    "books",
    "fashion",
    "office",
    "pets",
)

SORTS: tuple[str, ...] = ("relevance", "price_asc", "price_desc", "newest", "rating")

FIRST_NAMES: tuple[str, ...] = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "amir", "bea", "chen", "dmitri", "emeka", "fatima", "giulia", "hana", "ines", "jonas",
    "kofi", "lena", "mateo", "noor", "oskar", "priya", "quinn", "rosa", "sven", "tomas",
    "uma", "yusuf", "zoe", "liam", "mia", "noah", "emma", "lucas", "sofia", "arjun", "aiko",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies",
    "garcia", "martinez", "rossi", "muller", "schmidt", "dubois", "martin", "kowalski",
    "novak", "nielsen", "jensen", "silva", "santos", "kim", "lee", "park", "nguyen",
    "tanaka", "sato", "singh", "patel", "khan", "okafor", "mensah", "ivanova", "petrov",
    "larsen", "berg", "costa", "moreau", "fischer", "weber", "murphy", "kelly", "walsh",
)  # fmt: skip

CONSUMER_MAIL_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.net",
    "example.org",
    "mail.example",
    "inbox.example",
)

BROWSER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.3.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.6261.64 Mobile Safari/537.36",
)

CORPORATE_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
)

MOBILE_APP_AGENTS: tuple[str, ...] = (
    "ShopApp/5.3.1 (iPhone; iOS 17.3.1; Scale/3.00)",
    "ShopApp/5.3.1 (iPhone; iOS 16.7.5; Scale/2.00)",
    "ShopApp/5.3.0 (iPad; iOS 17.2; Scale/2.00)",
    "ShopApp/5.3.1 (Android 14; Pixel 7; okhttp/4.12.0)",
    "ShopApp/5.3.1 (Android 13; SM-S911B; okhttp/4.12.0)",
    "ShopApp/5.2.9 (Android 12; moto g(60); okhttp/4.11.0)",
)

CRAWLER_AGENTS: dict[str, tuple[str, ...]] = {
    "googlebot": (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/122.0.6261.94 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ),
    "bingbot": (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    ),
}

HEALTH_AGENT = "kube-probe/1.29"

WEB_REFERERS: tuple[str, ...] = (
    "https://shop.example.com/",
    "https://shop.example.com/account",
    "https://shop.example.com/cart",
    "https://shop.example.com/search",
    "https://shop.example.com/deals",
)
