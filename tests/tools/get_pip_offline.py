"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip in its sanity venvs.

ansible-test fetches get-pip.py from a host outside the package registries;
where that host is unreachable it asks for the script to be saved in its cache
(~/.ansible/test/cache/get_pip_<version>.py). This one does the same job with
what every CPython has: ``ensurepip`` puts the bundled pip in the empty venv,
then that pip installs the exact packages ansible-test asked for from the
configured package index.
"""

import subprocess
import sys


def main(argv):
    # get-pip.py's own flags; the rest are ordinary `pip install` arguments.
    args = [arg for arg in argv if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade", "--force-reinstall"] + args)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
