import sys

from campfire.cli import console_main

sys.exit(console_main())
