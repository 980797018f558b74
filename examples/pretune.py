"""Pre-tune flag_gems for the calls listed in a YAML file, so that no process tunes
on a first call (README, "Pre-tuning"). The same as ``python -m flag_gems.pretune``:

    python examples/pretune.py --shapes examples/shapes.yaml
    python examples/pretune.py --capture shapes.yaml -- examples/demo.py
"""

import sys

from flag_gems.pretune import main

if __name__ == "__main__":
    sys.exit(main())
