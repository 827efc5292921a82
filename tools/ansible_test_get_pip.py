"""Stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test creates one virtualenv per sanity test and bootstraps pip in it with a
script it downloads from ci-files.testing.ansible.com, which machines without general
internet access cannot reach (its own message says to save the script by hand to
~/.ansible/test/cache/get_pip_<version>.py). This one bootstraps pip with the standard
library's ensurepip, then installs the pip version ansible-test asks for from the
package index, as get-pip would (``make sanity`` puts it there when the cache has none).
"""

import subprocess
import sys

# get-pip's own options: ansible-test passes them to say what to leave out.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "pip", "install", *pip_args])
