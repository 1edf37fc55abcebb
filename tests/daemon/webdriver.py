#!/usr/bin/env python3
"""vmshiftd's web view in a real headless Chromium, through WebDriver (#17).

Usage: webdriver.py WEBDRIVER_URL DAEMON_URL ADMIN_TOKEN READ_TOKEN SHOTS_DIR SCHEDULED_JOB AT

Talks plain WebDriver (W3C, JSON over HTTP) to chromedriver on loopback
with urllib: no client library. Signs in with a token, starts a migration
from the jobs page and follows its row until it reads "succeeded", noting
every progress value the page showed on the way (the page is not reloaded);
opens the job's page (phases, log), the hosts page for a VM (its star
ratings and factors), the bulk page (a plan of two waves, run from the
page); then, from another site, posts a job to the API as a form would;
then signs in with a read token. SCHEDULED_JOB waits for its switchover at
AT: its row and its page must say so. Writes a PNG of each view into SHOTS_DIR.

Prints "PASS what" / "FAIL what: why" lines, and "JOB id", "RATING host
stars", "BULK id" lines for tests/daemon/web.sh to check against the
skeleton peer and the command.
"""
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriver:
    def __init__(self, url):
        self.url = url.rstrip("/")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": True,
            "goog:chromeOptions": {
                "binary": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--no-first-run", "--disable-extensions"],
            },
        }}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            detail = e.read()[:300]
            raise RuntimeError("WebDriver %s %s: HTTP %d %s" % (method, path, e.code, detail))

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def current(self):
        return self.s("GET", "/url")

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.s("POST", "/element/%s/click" % self.find(css), {})

    def type(self, css, text):
        self.s("POST", "/element/%s/value" % self.find(css), {"text": text})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def shot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def wait(self, script, timeout=30, *args):
        end = time.time() + timeout
        while time.time() < end:
            v = self.js(script, *args)
            if v:
                return v
            time.sleep(0.1)
        return None

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass


def main():
    wd_url, base, admin, read, shots, sched, at = sys.argv[1:8]
    failures = 0

    def check(what, ok, why=""):
        nonlocal failures
        if ok:
            print("PASS %s" % what)
        else:
            failures += 1
            print("FAIL %s: %s" % (what, why))
        sys.stdout.flush()

    wd = WebDriver(wd_url)
    try:
        # ---- signing in ----------------------------------------------------------
        wd.go(base + "/")
        check("without a session, / leads to the sign-in page",
              wd.current().endswith("/login"), wd.current())
        wd.type("#token", admin)
        wd.click("#login button")
        ready = wd.wait("return document.querySelector('#start-button') !== null")
        check("an admin token signs in; the jobs page has the start form",
              ready and wd.current().rstrip("/") == base, wd.current())

        # ---- a job waiting for its scheduled switchover ---------------------------
        want = "waiting for switchover at " + at
        text = wd.js("const r = document.getElementById('job-' + arguments[0]);"
                     "return r ? r.querySelector('.phase-cell').textContent : null;", sched)
        check("job %s's row: %s" % (sched, text), text and text.endswith(", " + want), str(text))
        wd.go("%s/jobs/%s" % (base, sched))
        page = wd.wait("const s = document.querySelector('#job .schedule');"
                       "return s ? [s.textContent, s.dataset.state,"
                       " s.parentNode.textContent] : null;", 10)
        check("job %s's page: Switchover %s" % (sched, page and page[2]),
              page and page[0] == want and page[1] == "waiting" and "(start-at)" in page[2],
              str(page))
        wd.shot(os.path.join(shots, "web-schedule.png"))
        wd.go(base + "/")
        wd.wait("return document.querySelector('#start-button') !== null")

        # ---- start a migration and follow it -------------------------------------
        wd.js("window.__sameDocument = 42;")
        wd.click('#start-vm option[value="mid:app9"]')
        wd.click('#start-to option[value="mid:beta"]')
        wd.click("#start-button")
        link = wd.wait("const a = document.getElementById('started-job');"
                       "return a ? a.textContent : null;", 30)
        check("Start answers with the job", link and link.startswith("job "), str(link))
        job = int(link.split()[1]) if link else 0
        print("JOB %d" % job)
        seen, states, shot_taken = [], [], False
        end = time.time() + 90
        state = None
        while time.time() < end:
            row = wd.js("const r = document.getElementById('job-' + arguments[0]);"
                        "if (!r) return null;"
                        "return [r.querySelector('.badge').textContent,"
                        " r.querySelector('.pct').textContent,"
                        " r.querySelector('progress').value, window.__sameDocument];", job)
            if row:
                state, pct, value, marker = row
                if marker != 42:
                    break
                if pct and (not seen or seen[-1] != pct):
                    seen.append(pct)
                if not states or states[-1] != state:
                    states.append(state)
                if not shot_taken and 30 <= value <= 80:
                    wd.shot(os.path.join(shots, "web-jobs.png"))
                    shot_taken = True
                if state in ("succeeded", "failed", "cancelled", "interrupted"):
                    break
            time.sleep(0.1)
        between = [p for p in seen if p not in ("0%", "100%")]
        check("the row of job %d reached succeeded on the page, without a reload" % job,
              state == "succeeded", "states %s" % states)
        check("its progress updated live: %s" % " ".join(seen), len(between) >= 3,
              "progress seen: %s" % seen)
        if not shot_taken:
            wd.shot(os.path.join(shots, "web-jobs.png"))

        # ---- the job's page ------------------------------------------------------
        wd.go("%s/jobs/%d" % (base, job))
        phases = wd.js("return [...document.querySelectorAll('ol.phases .name')]"
                       ".map(e => e.textContent);")
        log = wd.js("return document.querySelector('table.log').textContent;")
        loc = wd.js("return document.querySelector('#job .location').textContent;")
        check("job %d's page: phases %s, the log, the location %s" % (job, " ".join(phases), loc),
              phases[:1] == ["validate"] and phases[-1:] == ["done"] and "moved 'app9'" in log
              and loc == "beta", "%s / %s / %s" % (phases, loc, log[:200]))
        wd.shot(os.path.join(shots, "web-job.png"))

        # ---- hosts rated for a VM -------------------------------------------------
        wd.go(base + "/hosts")
        wd.click('#rate-vm option[value="demo:web1"]')
        wd.click("#rate-form button")
        wd.wait("return document.getElementById('ratings') !== null", 30)
        rows = wd.js("return [...document.querySelectorAll('#ratings tr.host')].map(r => "
                     "[r.dataset.host, Number(r.querySelector('.stars').dataset.stars),"
                     " r.querySelectorAll('ul.factors li').length]);") or []
        for host, stars, factors in rows:
            print("RATING %s %d %d" % (host, stars, factors))
        check("the hosts page rates %d hosts for demo:web1, each with its factors" % len(rows),
              len(rows) >= 2 and all(f > 0 for _, _, f in rows), str(rows))
        wd.shot(os.path.join(shots, "web-hosts.png"))

        # ---- a bulk plan by wave ------------------------------------------------
        wd.go(base + "/bulk")
        plan = ("[bulk]\nmax-per-backend=2\n\n[wave 1]\nvms=web1\nto=beta\n\n"
                "[wave 2]\nvms=db1\nto=beta\n")
        wd.js("document.getElementById('bulk-plan').value = arguments[0];", plan)
        wd.click("#bulk-button")
        done = wd.wait("const b = document.querySelector('#bulks .bulk');"
                       "return b && !b.classList.contains('state-running') ?"
                       " [b.dataset.id, b.className,"
                       "  [...b.querySelectorAll('table.wave')].map(t => t.dataset.wave + '=' +"
                       "   t.querySelector('caption .badge').textContent)] : null;", 60)
        if done:
            print("BULK %s" % done[0])
        check("a plan run from the bulk page: %s" % (done[2] if done else None),
              done and "state-succeeded" in done[1] and done[2] == ["wave 1=done", "wave 2=done"],
              str(done))
        wd.shot(os.path.join(shots, "web-bulk.png"))

        # ---- cancel from the job's page ---------------------------------------------
        wd.go(base + "/")
        wd.wait("return document.querySelector('#start-button') !== null")
        wd.click('#start-vm option[value="mid:app9"]')
        wd.click('#start-to option[value="mid:alpha"]')
        wd.click("#start-button")
        link = wd.wait("const a = document.getElementById('started-job');"
                       "return a ? a.textContent : null;", 30)
        cjob = int(link.split()[1]) if link else 0
        print("CANCELLED %d" % cjob)
        wd.go("%s/jobs/%d" % (base, cjob))
        wd.wait("const b = document.getElementById('cancel');"
                "return b && !b.disabled && document.querySelector('#job .phase')"
                ".textContent === 'transfer';", 30)
        wd.click("#cancel")
        # the state comes by /events at once, the log when the page has
        # fetched the job's view again
        final = wd.wait("const j = document.getElementById('job');"
                        "const s = j.querySelector('.state .badge').textContent;"
                        "const log = j.querySelector('table.log').textContent;"
                        "return s !== 'running' && s !== 'queued' &&"
                        " log.includes('cancel requested') ? [s,"
                        " document.getElementById('cancel').disabled, log] : null;", 60)
        check("Cancel on job %d's page: the page shows %s, the log who asked" % (
              cjob, final[0] if final else None),
              final and final[0] == "cancelled" and final[1] is True
              and "cancel requested by token 'ops'" in final[2], str(final)[:300])

        # ---- dismiss it from the same page, with a reason --------------------------
        wd.click('#repair-mode option[value="dismiss"]')
        wd.type("#repair-reason", "left on beta on purpose")
        wd.click("#repair")
        final = wd.wait("const j = document.getElementById('job');"
                        "const s = j.querySelector('.state .badge').textContent;"
                        "const log = j.querySelector('table.log').textContent;"
                        "return s === 'repaired' && log.includes('dismissed: left on beta') ?"
                        " [s, document.getElementById('repair').disabled] : null;", 60)
        check("Repair (dismiss, with a reason) on job %d's page: %s" % (cjob, final),
              final and final[1] is True, str(final))

        # ---- another site posts a job with the admin's browser -------------------
        form = ("<form id=f method=post action='%s/api/v1/jobs' enctype='text/plain'>"
                "<input name='{\"vm\": \"mid:app8\", \"to\": \"beta\", \"x\": \"' value='\"}'>"
                "</form><script>document.getElementById('f').submit()</script>" % base)
        wd.go("data:text/html;charset=utf-8," + urllib.parse.quote(form))
        answered = wd.wait("return location.href.startsWith('http') ? "
                           "document.body.textContent : null;", 20)
        check("a cross-site form post reaches the daemon and is refused",
              answered is not None and '"error"' in answered, str(answered)[:300])
        wd.go("data:text/html;charset=utf-8,<p>other site</p>")
        status = wd.s("POST", "/execute/async", {"script": (
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0] + '/api/v1/jobs', {method: 'POST', credentials: 'include',"
            " headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({vm: 'mid:app8', to: 'beta'})})"
            ".then(r => done('HTTP ' + r.status), e => done('blocked: ' + e));"),
            "args": [base]})
        check("a cross-site fetch with credentials is blocked: %s" % status,
              status and not status.startswith("HTTP 2"), str(status))

        # ---- a read token: the page reads, the buttons are off ---------------------
        wd.s("DELETE", "/cookie")
        wd.go(base + "/login")
        wd.type("#token", read)
        wd.click("#login button")
        wd.wait("return document.querySelector('#jobs') !== null")
        off = wd.js("const b = document.getElementById('start-button');"
                    "return b ? b.disabled : null;")
        rows = wd.js("return document.querySelectorAll('#jobs tbody tr').length;")
        check("a read token: %s job rows, the Start button disabled" % rows,
              off is True and rows and rows >= 3, "disabled %s, rows %s" % (off, rows))
    except Exception as e:  # a WebDriver error: say which
        check("the browser session", False, str(e)[:400])
    finally:
        wd.quit()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
