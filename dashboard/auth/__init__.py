"""Who may use the dashboard: password hashing (``passwords``), users and API tokens in
SQLite (``store``), signed session cookies with CSRF tokens (``sessions``) and login
throttling (``limits``). Framework-free: FastAPI dependencies build on these."""
