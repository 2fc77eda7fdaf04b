"""``python -m skcharclf``: the command line."""

from skcharclf.cli import main

raise SystemExit(main())
