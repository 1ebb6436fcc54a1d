import itertools
import random
import uuid

import pytest

from detectors.payload.params import (
    MAX_NAME,
    MAX_PARAMS,
    MAX_VALUE,
    decode_component,
    request_params,
)
from detectors.payload.profiles import (
    MAX_SHOWN,
    Deviation,
    DeviationKind,
    ParamProfiles,
    ValueClass,
    value_class_of,
)

ITEM = "/api/v1/items/{id}"
SEARCH = "/api/v1/search"
WARMUP = 50

# Ordinary shopping searches, some that a signature engine mistakes for attacks.
PHRASES = [
    "men's shoes", "exec chair", "select comfort pillow", "drop leaf table", "union jack flag",
    "wireless headphones", "usb c charger", "running shoes", "yoga mat", "coffee grinder",
    "standing desk", "office chair", "gaming mouse", "4k monitor", "winter jacket",
    "hiking boots", "water bottle", "lego star wars", "dog bed", "led desk lamp",
    "smart watch", "wool socks", "bed sheets queen", "cast iron pan", "chef knife",
    "robot vacuum", "sunscreen spf 50", "camping tent", "garden hose", "kids bike",
    "hdmi cable", "sd card 128gb", "fountain pen", "summer dress", "gift card",
    "women's running shoes", "kids' rain boots", "o'neill wetsuit", "levi's 501",
]  # fmt: skip
OTHER_SEARCHES = [
    "rain jacket", "noise cancelling headphones", "espresso machine", "air fryer",
    "mechanical keyboard", "phone case", "backpack", "board games", "baby stroller",
    "cat tree", "bluetooth speaker", "sunglasses", "memory foam pillow", "vacuum cleaner",
    "protein powder", "dumbbells", "sleeping bag", "wall clock", "throw blanket",
    "ipad case", "printer ink", "notebook", "jeans", "dress shirt", "birthday gift for mom",
    "men's watch", "kids' shoes", "chair", "desk lamp 2", "socks",
]  # fmt: skip


def feed(profiles: ParamProfiles, route: str, name: str, values: list[str]) -> list[Deviation]:
    found: list[Deviation] = []
    for i, value in enumerate(values):
        found += profiles.check(route, [(name, value)], float(i))
    return found


def ids(rng: random.Random, count: int) -> list[str]:
    return [str(rng.randint(1, 250_000)) for _ in range(count)]


# -- request_params and decode_component --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("plain", "plain"),
        ("men%27s+shoes", "men's shoes"),
        ("a+b%2Bc", "a b+c"),  # an encoded plus stays a plus
        ("%253Cscript%253E", "<script>"),  # double encoding: decoded twice
        ("%25253C", "%3C"),  # three layers: decoded twice, never more
        ("100%25+cotton", "100% cotton"),
        ("50%off", "50%off"),  # not an escape: kept as it is
        ("%", "%"),
        ("%4", "%4"),
        ("%u0027", "%u0027"),
        ("caf%C3%A9", "café"),  # UTF-8
        ("A%F1adir", "Añadir"),  # not UTF-8: Latin-1
        ("%2500", "\x00"),
        ("back\\slash%41", "back\\slashA"),
    ],
)
def test_decode_component(text: str, decoded: str) -> None:
    assert decode_component(text) == decoded


def test_query_pairs_are_decoded_in_order_with_repeats_and_blanks() -> None:
    assert request_params("q=men%27s+shoes&page=2&&flag&tag=a&tag=b&%6Eame=x", "", "") == [
        ("q", "men's shoes"),
        ("page", "2"),
        ("flag", ""),
        ("tag", "a"),
        ("tag", "b"),
        ("name", "x"),
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "pairs"),
    [
        (
            "a=1&b=x+y",
            "application/x-www-form-urlencoded; charset=UTF-8",
            [("a", "1"), ("b", "x y")],
        ),
        ("a=1&b=x+y", "", [("a", "1"), ("b", "x y")]),  # no content type, shaped like a form
        ("{not=json}", "application/x-www-form-urlencoded", [("{not", "json}")]),  # declared
        ("just some text", "", []),
        ("a=1&b=2", "text/plain", []),  # declared as something else: not guessed
        ("<x>1</x>", "application/xml", []),
        ('{"a": 1}', "text/plain", [("a", "1")]),  # looks like JSON: read as JSON
        ("  [1, 2]", "", [("[]", "1"), ("[]", "2")]),
        ('"just a string"', "application/json", [("", "just a string")]),
        ("{broken", "application/json", [("", "{broken")]),  # kept whole, not lost
        ("", "application/json", []),
    ],
)
def test_body_pairs_by_content_type(
    body: str, content_type: str, pairs: list[tuple[str, str]]
) -> None:
    assert request_params("", body, content_type) == pairs


def test_json_is_flattened_with_dotted_names_and_array_items() -> None:
    body = (
        '{"user": {"name": "ann", "age": 41, "admin": false, "tags": ["a", "b"]},'
        ' "items": [{"sku": "X1", "qty": 2}], "note": null, "price": 12.5,'
        ' "text": "100%25 not decoded"}'
    )
    assert request_params("page=1", body, "application/json") == [
        ("page", "1"),
        ("user.name", "ann"),
        ("user.age", "41"),
        ("user.admin", "false"),
        ("user.tags[]", "a"),
        ("user.tags[]", "b"),
        ("items[].sku", "X1"),
        ("items[].qty", "2"),
        ("note", "null"),
        ("price", "12.5"),
        ("text", "100%25 not decoded"),  # JSON text is not URL-encoded
    ]


def test_caps_on_params_values_names_and_depth() -> None:
    many = "&".join(f"p{i}={i}" for i in range(200))
    pairs = request_params(many, "x=1", "application/x-www-form-urlencoded")
    assert len(pairs) == MAX_PARAMS
    assert pairs[-1] == (f"p{MAX_PARAMS - 1}", str(MAX_PARAMS - 1))  # the first ones kept

    (long_pair,) = request_params("v=" + "%41" * 5000 + "B", "", "")
    assert long_pair[1] == "A" * MAX_VALUE  # cut after decoding, prefix kept
    (named,) = request_params("n" * 1000 + "=1", "", "")
    assert named == ("n" * MAX_NAME, "1")

    big = '{"a": [' + ", ".join(str(i) for i in range(500)) + "]}"
    assert len(request_params("", big, "application/json")) == MAX_PARAMS

    deep = '{"a": ' * 1000 + "1" + "}" * 1000  # deeper than Python's recursion limit
    assert request_params("", deep, "application/json") == [(".".join("a" * 1000)[:MAX_NAME], "1")]

    (raw,) = request_params("", '{"x": "' + "y" * 10_000, "application/json")  # invalid JSON
    assert raw == ("", ('{"x": "' + "y" * 10_000)[:MAX_VALUE])


def test_a_near_miss_form_body_fails_fast() -> None:
    # The form-shape check must not backtrack exponentially on a body that almost is one.
    body = "a=b" + "&c" * 5000 + " x"
    assert request_params("", body, "") == []


# -- value classes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", ValueClass.INTEGER),
        ("-7", ValueClass.INTEGER),
        ("3.25", ValueClass.DECIMAL),
        ("9f1c2a6e-4b1d-4c8e-9a53-0b6f1d2e3c4a", ValueClass.UUID),
        ("5f2b9c0e1a7d", ValueClass.HEX),
        ("deadbeef", ValueClass.TOKEN),  # no digit: a word, not hex
        ("price_desc", ValueClass.TOKEN),
        ("o.neil", ValueClass.TOKEN),
        ("ann@example.com", ValueClass.EMAIL),
        ("2024-03-12", ValueClass.DATE),
        ("2024-03-12T08:00:00Z", ValueClass.DATE),
        ("men's shoes", ValueClass.FREE_TEXT),
        ("../../etc", ValueClass.FREE_TEXT),
        ("", ValueClass.EMPTY),
    ],
)
def test_value_class_of(value: str, expected: ValueClass) -> None:
    assert value_class_of(value) is expected


# -- profiles -----------------------------------------------------------------------------


def test_integer_id_flags_injection_and_traversal_but_not_other_ids() -> None:
    rng = random.Random(1)
    profiles = ParamProfiles(warmup=WARMUP)
    assert feed(profiles, ITEM, "id", ids(rng, 300)) == []
    assert profiles.value_class(ITEM, "id") is ValueClass.INTEGER

    assert profiles.check(ITEM, [("id", "4711")], 400.0) == []
    (sqli,) = profiles.check(ITEM, [("id", "12 OR 1=1")], 401.0)
    assert (sqli.name, sqli.value, sqli.kind) == ("id", "12 OR 1=1", DeviationKind.TYPE)
    assert sqli.score >= 0.75
    assert sqli.reason.startswith("integer expected, got free text with")
    (traversal,) = profiles.check(ITEM, [("id", "../../etc")], 402.0)
    assert traversal.kind is DeviationKind.TYPE
    assert traversal.score >= 0.75 and "slash" in traversal.reason


def test_uuid_param() -> None:
    rng = random.Random(2)
    profiles = ParamProfiles(warmup=WARMUP)
    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200)]
    assert feed(profiles, "/orders/{orderId}", "order", uuids) == []
    assert profiles.value_class("/orders/{orderId}", "order") is ValueClass.UUID

    fresh = "0b6f1d2e-3c4a-4c8e-9a53-9f1c2a6e4b1d"
    assert profiles.check("/orders/{orderId}", [("order", fresh)], 300.0) == []
    (bad,) = profiles.check("/orders/{orderId}", [("order", "1' OR '1'='1")], 301.0)
    assert bad.kind is DeviationKind.TYPE and bad.score >= 0.85
    (short,) = profiles.check("/orders/{orderId}", [("order", "12345")], 302.0)
    assert short.kind is DeviationKind.TYPE and short.score >= 0.75


def test_enum_flags_an_unseen_long_value_and_accepts_its_members() -> None:
    rng = random.Random(3)
    profiles = ParamProfiles(warmup=WARMUP)
    assert (
        feed(profiles, SEARCH, "sort", [rng.choice(["price", "name", "date"]) for _ in range(200)])
        == []
    )
    assert profiles.value_class(SEARCH, "sort") is ValueClass.ENUM
    assert profiles.check(SEARCH, [("sort", "name")], 300.0) == []

    (long,) = profiles.check(SEARCH, [("sort", "price" * 40)], 301.0)  # no new characters
    assert long.kind is DeviationKind.LENGTH and long.score >= 0.75
    assert long.reason == "length 200, usually at most 5"
    (sqli,) = profiles.check(SEARCH, [("sort", "price;drop table users")], 302.0)
    assert sqli.score >= 0.75 and "semicolon" in sqli.reason
    # A short new word made of the same characters is weak, and learnt: seen twice, a
    # value is a member.
    (new,) = profiles.check(SEARCH, [("sort", "rating")], 303.0)
    assert (new.kind, new.score) == (DeviationKind.VALUE, 0.4)
    assert len(profiles.check(SEARCH, [("sort", "rating")], 304.0)) == 1
    assert profiles.check(SEARCH, [("sort", "rating")], 305.0) == []


def test_free_text_search_does_not_flag_ordinary_searches() -> None:
    rng = random.Random(4)
    profiles = ParamProfiles(warmup=WARMUP)
    feed(profiles, SEARCH, "q", [rng.choice(PHRASES) for _ in range(400)])
    assert profiles.value_class(SEARCH, "q") is ValueClass.FREE_TEXT

    for i, query in enumerate(OTHER_SEARCHES * 3):
        assert profiles.check(SEARCH, [("q", query)], 500.0 + i) == [], query
    (long,) = profiles.check(SEARCH, [("q", "a" * 2000)], 600.0)
    assert long.kind is DeviationKind.LENGTH and long.score >= 0.9
    (nul,) = profiles.check(SEARCH, [("q", "shoes\x00")], 601.0)
    assert nul.kind is DeviationKind.CHARACTERS and nul.score >= 0.9


def test_new_characters_in_free_text_are_weak_and_reported_until_seen_twice() -> None:
    rng = random.Random(5)
    profiles = ParamProfiles(warmup=WARMUP)
    feed(profiles, SEARCH, "q", [rng.choice(PHRASES) for _ in range(200)])

    first = profiles.check(SEARCH, [("q", "<3 gift")], 300.0)
    second = profiles.check(SEARCH, [("q", "i <3 ny mug")], 301.0)
    assert [(d.kind, d.score) for d in first + second] == [(DeviationKind.CHARACTERS, 0.45)] * 2
    assert first[0].reason == "characters never seen here: angle bracket"
    assert profiles.check(SEARCH, [("q", "<3 gift")], 302.0) == []


def test_nothing_is_judged_before_warmup() -> None:
    profiles = ParamProfiles(warmup=WARMUP)
    rng = random.Random(6)
    values = [*ids(rng, WARMUP - 6), "1 OR 1=1", "x" * 5000, "\x00", "<script>", "-1"]
    assert feed(profiles, ITEM, "id", values) == []
    assert profiles.value_class(ITEM, "id") is None  # one value short of warm
    assert profiles.value_class("/never/seen", "id") is None


def test_flagged_values_are_not_learnt() -> None:
    rng = random.Random(7)
    profiles = ParamProfiles(warmup=WARMUP)
    feed(profiles, ITEM, "id", ids(rng, 100))
    # A flood of attacks, three times the learnt traffic, never becomes the norm.
    flood = [profiles.check(ITEM, [("id", f"{i} OR 1=1")], 200.0 + i) for i in range(300)]
    assert all(len(found) == 1 and found[0].score >= 0.75 for found in flood)
    assert profiles.value_class(ITEM, "id") is ValueClass.INTEGER
    assert profiles.check(ITEM, [("id", "77")], 600.0) == []


def test_weak_deviations_of_a_request_with_a_strong_one_are_not_learnt() -> None:
    rng = random.Random(8)
    profiles = ParamProfiles(warmup=WARMUP)
    for i in range(200):
        profiles.check(SEARCH, [("q", rng.choice(PHRASES)), ("page", str(i % 9 + 1))], float(i))
    attack = [("q", "shoes <script>"), ("page", "1 UNION SELECT")]
    for i in range(5):
        assert len(profiles.check(SEARCH, attack, 300.0 + i)) == 2
    # The angle bracket came only with an attack: still new.
    (alone,) = profiles.check(SEARCH, [("q", "<3 gift")], 400.0)
    assert alone.kind is DeviationKind.CHARACTERS


def test_a_few_attacks_while_warming_up_do_not_widen_the_profile() -> None:
    rng = random.Random(9)
    profiles = ParamProfiles(warmup=WARMUP)
    values = ids(rng, 200)
    for i in (3, 17, 40):  # 1.5% of the values, all within the warm-up
        values[i] = "1' OR '1'='1"
    feed(profiles, ITEM, "id", values)
    assert profiles.value_class(ITEM, "id") is ValueClass.INTEGER
    (found,) = profiles.check(ITEM, [("id", "2' OR '2'='2")], 300.0)
    assert found.kind is DeviationKind.TYPE and found.score >= 0.75


def test_an_established_minority_is_weak_and_new_syntax_strong() -> None:
    rng = random.Random(10)
    profiles = ParamProfiles(warmup=WARMUP)
    values = [rng.choice(["10", "20", "50", "100"]) for _ in range(400)]
    for i in range(0, 400, 25):  # "all" is 4% of the limits, from the start
        values[i] = "all"
    feed(profiles, "/reports", "limit", values)
    assert profiles.value_class("/reports", "limit") is ValueClass.INTEGER
    (known,) = profiles.check("/reports", [("limit", "all")], 500.0)
    assert (known.kind, known.score) == (DeviationKind.TYPE, 0.45)
    (bad,) = profiles.check("/reports", [("limit", "all;--")], 501.0)
    assert bad.score >= 0.85


def test_a_new_parameter_on_a_warm_route_is_unexpected_until_its_profile_is_warm() -> None:
    rng = random.Random(11)
    profiles = ParamProfiles(warmup=WARMUP)
    for i in range(100):
        assert profiles.check(ITEM, [("id", str(rng.randint(1, 999)))], float(i)) == []
    found = [profiles.check(ITEM, [("debug", "1")], 200.0 + i) for i in range(WARMUP + 10)]
    assert [len(f) for f in found] == [1] * WARMUP + [0] * 10
    first = found[0][0]
    assert (first.name, first.kind, first.score) == ("debug", DeviationKind.PARAMETER, 0.3)
    assert first.reason == "parameter never seen on this route"


def test_routes_are_bounded_and_expire() -> None:
    profiles = ParamProfiles(warmup=WARMUP, max_routes=10, ttl_s=60.0)
    for i in range(100):
        profiles.check(f"/r{i}", [("id", "1")], float(i))
    assert len(profiles.routes) == 10
    assert sorted(profiles.routes.keys()) == sorted(f"/r{i}" for i in range(90, 100))
    assert profiles.expire(154.5) == 5  # /r90 ... /r94 idle for a minute
    assert len(profiles.routes) == 5


def test_parameters_per_route_are_bounded_and_fuzzing_keeps_the_established_ones() -> None:
    rng = random.Random(12)
    profiles = ParamProfiles(warmup=WARMUP, max_params=8)
    for i in range(200):
        profiles.check(ITEM, [("id", str(rng.randint(1, 999))), ("page", "1")], float(i))
    for i, name in enumerate(itertools.islice((f"fuzz{n}" for n in itertools.count()), 500)):
        (found,) = profiles.check(ITEM, [(name, "1")], 300.0 + i)
        assert found.kind is DeviationKind.PARAMETER
    assert profiles.tracked() == 8
    assert profiles.value_class(ITEM, "id") is ValueClass.INTEGER
    (still,) = profiles.check(ITEM, [("id", "1 OR 1=1")], 900.0)
    assert still.kind is DeviationKind.TYPE


def test_enum_state_stays_small_for_high_cardinality_values() -> None:
    rng = random.Random(13)
    profiles = ParamProfiles(warmup=WARMUP)
    feed(profiles, "/users", "login", [f"user{rng.randint(0, 10**9)}" for _ in range(2000)])
    state = profiles.routes.peek("/users")
    assert state is not None
    assert state.params["login"].values is None  # too many distinct values: not counted
    assert profiles.value_class("/users", "login") is ValueClass.TOKEN


def test_deviation_value_is_truncated() -> None:
    profiles = ParamProfiles(warmup=WARMUP)
    feed(profiles, ITEM, "id", ids(random.Random(14), 100))
    (found,) = profiles.check(ITEM, [("id", "x" * 5000)], 200.0)
    assert found.value == "x" * MAX_SHOWN


def test_parameters_are_validated_and_shown() -> None:
    assert "warmup=64" in repr(ParamProfiles())
    with pytest.raises(ValueError, match="warmup"):
        ParamProfiles(warmup=0)
    with pytest.raises(ValueError, match="dominance"):
        ParamProfiles(dominance=0.3)
    with pytest.raises(ValueError, match="horizon"):
        ParamProfiles(warmup=100, horizon=150)
    with pytest.raises(ValueError, match="name_share"):
        ParamProfiles(name_share=1.0)


def test_same_input_same_deviations() -> None:
    rng = random.Random(15)
    stream = [
        [("q", rng.choice([*PHRASES, "x' OR 1=1 --", "<b>"])), ("page", str(rng.randint(1, 9)))]
        for _ in range(500)
    ]

    def run() -> list[list[Deviation]]:
        profiles = ParamProfiles(warmup=WARMUP)
        return [profiles.check(SEARCH, pairs, float(i)) for i, pairs in enumerate(stream)]

    assert run() == run()


def test_a_tampered_enum_value_learnt_while_warming_up_is_still_flagged() -> None:
    # "confirm/" is 5% of the values from the first one on: it recurs, but carries a
    # character (the slash) that the enum's core values never have.
    rng = random.Random(16)
    values = [rng.choice(["confirm", "checkout"]) for _ in range(400)]
    for i in range(0, 400, 20):
        values[i] = "confirm/"
    profiles = ParamProfiles(warmup=WARMUP)
    feed(profiles, "/cart", "step", values)
    assert profiles.value_class("/cart", "step") is ValueClass.ENUM
    assert profiles.check("/cart", [("step", "checkout")], 500.0) == []
    (found,) = profiles.check("/cart", [("step", "confirm/")], 501.0)
    assert found.kind is DeviationKind.CHARACTERS and found.score >= 0.75
    assert found.reason == "characters never seen here: slash"


def test_a_frequent_enum_value_is_a_member_whatever_its_characters() -> None:
    rng = random.Random(17)
    values = rng.choices(["price", "name", "-price"], weights=[50, 35, 15], k=400)
    profiles = ParamProfiles(warmup=WARMUP)
    assert feed(profiles, SEARCH, "sort", values) == []
    assert profiles.value_class(SEARCH, "sort") is ValueClass.ENUM
    assert profiles.check(SEARCH, [("sort", "-price")], 500.0) == []


def test_a_name_rare_on_its_route_stays_unexpected_even_if_it_came_while_warming_up() -> None:
    rng = random.Random(18)
    profiles = ParamProfiles(warmup=WARMUP)
    found: list[list[Deviation]] = []
    for i in range(3000):
        # A misspelt name in 1% of the requests, from the first ones on (inside the
        # warm-up), and an optional parameter in a quarter of them.
        pairs = [("idA" if i % 100 == 7 else "id", str(rng.randint(1, 999)))]
        if i % 4 == 0:
            pairs.append(("page", str(i % 7 + 1)))
        found.append(profiles.check(ITEM, pairs, float(i)))
    flagged = [deviations for deviations in found[WARMUP:] if deviations]
    assert len(flagged) == 29  # each request with idA once the route is warm
    assert {(d.name, d.kind, d.score, d.reason) for f in flagged for d in f} == {
        ("idA", DeviationKind.PARAMETER, 0.3, "parameter rarely seen on this route")
    }
