"""`python -m chorus` is the `chorus` command."""

from chorus.cli import main

raise SystemExit(main())
