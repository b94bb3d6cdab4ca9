from adcoffea.cli import main

raise SystemExit(main())
