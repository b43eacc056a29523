"""``python -m mmslim ...``: the ``mmslim`` command (under torchrun: ``-m mmslim train ...``)."""

from mmslim.cli import main

raise SystemExit(main())
