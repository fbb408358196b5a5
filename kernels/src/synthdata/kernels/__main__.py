"""``python -m synthdata.kernels``: print which kernel backends can run here (JSON)."""

import json

from synthdata.kernels import available_backends

if __name__ == "__main__":
    print(json.dumps(available_backends(), indent=2))
