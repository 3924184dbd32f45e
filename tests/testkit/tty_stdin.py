#!/usr/bin/env python3
"""Run a command with its stdin on a pseudo-terminal, answering one prompt.

    tty_stdin.py ANSWER COMMAND [ARG...]

The command's stdin is the terminal side of a new pseudo-terminal, so it sees
a terminal there; its stdout and stderr are this script's. ANSWER and a
newline are typed into the terminal before the command starts: the terminal
keeps the line until the command reads it. Exits with the command's status
(128 + N if signal N ended it).
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 64
    answer, command = argv[1], argv[2:]
    controller, terminal = os.openpty()
    try:
        os.write(controller, answer.encode() + b"\n")
        with subprocess.Popen(command, stdin=terminal) as child:
            os.close(terminal)
            terminal = -1
            code = child.wait()
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
