#!/usr/bin/env python3
"""The live page's update from /events, in headless Chromium driven over the DevTools protocol
(--remote-debugging-pipe: JSON messages separated by NUL bytes on file descriptors 3 and 4, no
websocket needed).

    page_live.py <chromium> <url> <service pid> <profile dir>

Loads the page once, waits (on DOM mutations, not on time) until it shows app/web running at
incarnation 3 with its /events stream open, stops the page's periodic /tree refresh so that only
an /events report can change the row, marks the document, makes the service crash web
(SIGUSR1), and waits until web's row shows incarnation 4 and the crash report is listed, in the
same document (the mark is still there: no reload). Each wait is bounded (60 s) as a safety net.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

LIMIT = 60.0


class Browser:
    def __init__(self, chromium, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands from fd 3 and writes answers to fd 4.
        def child_fds():
            # Through fresh copies: a pipe end may already be 3 or 4 (dup2 onto itself would keep
            # its close-on-exec flag), or the other one's target.
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            # close_fds would close 3 and 4 again after preexec_fn; dup2 leaves them inheritable.
            preexec_fn=child_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile + ".log"), "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + LIMIT
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self.next_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{method}: no answer within {LIMIT} s")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 65536)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe")
                self.buffer += chunk

    def close(self):
        self.proc.kill()
        self.proc.wait()


def until(browser, session, condition):
    """Resolves once `condition` (a JS expression) is truthy, rechecked on every DOM mutation;
    returns its value. Chromium answers when the promise settles."""
    expr = f"""new Promise((resolve, reject) => {{
      const check = () => {{
        let v;
        try {{ v = ({condition}); }} catch (e) {{ return false; }}  // not built yet
        if (v) {{ resolve(JSON.stringify(v)); return true; }}
        return false;
      }};
      if (check()) return;
      const o = new MutationObserver(() => {{ if (check()) o.disconnect(); }});
      o.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
      setTimeout(() => reject(new Error("not met: " + {json.dumps(condition)})), {int(LIMIT * 1000) - 5000});
    }})"""
    r = browser.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                          "returnByValue": True}, session)
    if "exceptionDetails" in r:
        raise RuntimeError(r["exceptionDetails"].get("exception", {}).get("description", r))
    return json.loads(r["result"]["value"])


def main():
    chromium, url, pid, profile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    browser = Browser(chromium, profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        # Answers once the page's document is committed: the evaluations below run in it.
        browser.call("Page.navigate", {"url": url}, session)
        web = 'document.querySelector(\'tr[data-path="app/web"]\')'
        before = until(browser, session,
                       f'document.getElementById("conn").dataset.state === "live" && {web} && '
                       f'{web}.dataset.incarnation === "3" && {{...{web}.dataset}}')
        print(f"live before: {before}")
        # From here only an /events report can refresh the tree: the periodic refresh is stopped.
        browser.call("Runtime.evaluate", {"expression":
                     "for (let i = 1; i < 10000; ++i) clearInterval(i); window.backplaneMark = 1;"},
                     session)
        os.kill(pid, signal.SIGUSR1)
        after = until(browser, session,
                      f'window.backplaneMark === 1 && {web}.dataset.incarnation === "4" && '
                      f'document.getElementById("reports").textContent.includes('
                      f'"crash requested (SIGUSR1)") && {{...{web}.dataset}}')
        print(f"live after:  {after}")
        if after.get("status") != "running" or after.get("crashes") != "3":
            print(f"page_live: web's row is wrong after the crash: {after}", file=sys.stderr)
            return 1
        return 0
    finally:
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
