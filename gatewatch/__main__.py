from gatewatch.cli.main import main

raise SystemExit(main())
