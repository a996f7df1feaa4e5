import sys

from splatfilm.cli import main

sys.exit(main())
