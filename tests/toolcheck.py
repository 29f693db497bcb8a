"""External tools the tests need: a developer without them skips, CI (CI set) fails instead."""
import os
import shutil

import pytest


def need_tools(*tools):
    """Skip when a tool is missing on a developer machine; in CI (CI set) a missing tool is a failure."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"required tools missing in CI: {', '.join(missing)} (tools/setup.sh installs them)")
        pytest.skip(f"tools not installed: {', '.join(missing)} (run tools/setup.sh)")
