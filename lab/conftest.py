# pytest puts this directory on sys.path, so lab/tests import the harness as `chaos`.
