from a2g_core.cli import main

raise SystemExit(main())
