import os
import sys

from .cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # One rank of several (torchrun): its work is saved and its process group left, so it ends without
    # the interpreter's teardown, where destroying a thread of the group's transport that is still
    # joinable can abort the rank after its last line ("terminate called without an active exception").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
