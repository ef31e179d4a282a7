"""`python -m authsocket_client`: the command line (see cli.py)."""

from authsocket_client.cli import main

raise SystemExit(main())
