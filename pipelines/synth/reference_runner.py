"""Run generated reference solutions on their test inputs and print the expected outputs.

Reads JSON lines {"id", "code", "entry", "inputs": [[arg, ...], ...]} on stdin and writes one JSON line per
task: {"id", "cases": [{"args": "<python literal>", "expected": "<python literal>"}]} or {"id", "error"}.
Each task runs under a wall-clock alarm, so a reference that never ends is reported, not waited for.
Outputs must be Python literals that evaluate back to themselves: that is what the tests compare against.
"""

import ast
import json
import signal
import sys


class TaskTimeout(BaseException):
    pass


def on_alarm(signum, frame):
    raise TaskTimeout()


def is_literal(text, value):
    try:
        return ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        return False


def run_task(task, seconds):
    namespace = {"__name__": "synth_reference"}
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        exec(compile(task["code"], task["id"], "exec"), namespace)
        fn = namespace[task["entry"]]
        cases = []
        for args in task["inputs"]:
            value = fn(*args)
            expected = repr(value)
            if not is_literal(expected, value):
                return {"id": task["id"], "error": "output is not a literal: " + expected[:80]}
            cases.append({"args": ", ".join(repr(a) for a in args), "expected": expected})
        return {"id": task["id"], "cases": cases}
    except TaskTimeout:
        return {"id": task["id"], "error": "timeout after %gs" % seconds}
    except BaseException as err:  # a reference that raises or exits is dropped, never counted
        return {"id": task["id"], "error": "%s: %s" % (type(err).__name__, str(err)[:200])}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    sys.setrecursionlimit(200)
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(run_task(json.loads(line), seconds)) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
