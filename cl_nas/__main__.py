import sys

from cl_nas.cli import main

sys.exit(main())
