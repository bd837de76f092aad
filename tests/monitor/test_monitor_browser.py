"""The dashboard in a real browser (headless Chromium through Selenium):
a training study with Breed, whose simulation 0 hangs in its first attempt.
The page loads from the study (no network besides it), its charts fill, the
kill button of the job table kills simulation 0 (its retry appears), and with
the study paused and quiet the page's numbers equal /api/status. Screenshots
are saved under the build directory (tests/monitor/*.png); the finished
study is shown again by `melissa-run --monitor-only`. Skipped (exit 77)
without LibTorch or without chromium and its driver.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from monitor_common import (RUN, Monitor, check, fail, skip_without_torch, slow_first_attempt_client,
                            start, tmpdir, wait_for_file, write_study)

if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")):
    print("SKIP: chromium and chromium-driver are not installed", flush=True)
    sys.exit(77)
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

BUILD = os.environ.get("MELISSA_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
ARTIFACTS = os.path.join(BUILD, "tests", "monitor")
os.makedirs(ARTIFACTS, exist_ok=True)

work = tmpdir("monitor-browser")
out = os.path.join(work, "out")
STEPS = 100
client = slow_first_attempt_client(work, 8, STEPS)
study = write_study(
    work, study={"name": "monitor-browser", "output_dir": out, "seed": 11, "mode": "training"},
    launcher={"job_limit": 1, "poll_interval": 0.2}, server={"sink": "train", "port": None},
    client={"command": [client], "ranks": 1, "steps": STEPS},
    parameters={"count": 40}, fields=[{"name": "temperature", "size": 64}],
    buffer={"policy": "reservoir", "capacity": 400, "threshold": 40},
    training={"time_steps": STEPS, "hidden": [16], "batch_size": 4, "learning_rate": 3e-3,
              "metrics_every": 100, "threads": 1},
    breed={"period": 40, "window": 6, "sigma": 0.1, "r_start": 0.5, "r_end": 0.7, "r_steps": 2})
skip_without_torch(work, study)

run = start([RUN, study], stdout=open(os.path.join(work, "run.log"), "w"), stderr=subprocess.STDOUT)
wait_for_file(os.path.join(out, "monitor.json"), run)
m = Monitor(out)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,2200", f"--user-data-dir={work}/chromium"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_script_timeout(30)


def quit_all():
    try:
        driver.quit()
    except Exception:
        pass


import atexit  # noqa: E402
atexit.register(quit_all)


def wait_for(what, predicate, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    driver.save_screenshot(os.path.join(ARTIFACTS, "monitor-timeout.png"))
    fail(f"timed out waiting for {what}")


js = driver.execute_script
driver.get(m.url)
check(driver.current_url.rstrip("/").endswith(m.base.split("//")[1]) and "token" not in driver.current_url,
      f"the printed URL lands on the page without the token in the address ({driver.current_url})")
wait_for("the first refresh", lambda: js("return document.body.dataset.ready") == "1", 60)
errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] if hasattr(driver, "get_log") else []
check(not errors, f"no script error in the page ({errors[:2]})")
check(js("return typeof Chart") == "function", "Chart.js loaded from the study")

# --- the kill button of simulation 0's hanging attempt ---
victim = wait_for("simulation 0 attempt 1 running", lambda: next(
    (j for j in m.ok("/api/jobs?state=running")["jobs"] if j.get("sim_id") == 0 and j.get("attempt") == 1), None))
# The table is redrawn at each refresh: find and click the button in one step.
wait_for("its kill button, clicked", lambda: js(
    f"const b = document.querySelector('button.kill[data-job=\"{victim['id']}\"]');"
    "if (!b) return false; b.click(); return true;"))
wait_for("the retry of simulation 0", lambda: any(
    j["sim_id"] == 0 and j["attempt"] == 2 for j in m.ok("/api/jobs")["jobs"] if j["kind"] == "client"), 60)
check(m.ok(f"/api/jobs/{victim['id']}")["job"]["state"] == "cancelled", "the kill button cancelled the job, its retry runs")

# --- the charts fill ---
def points(chart, dataset=0):
    return js(f"return Chart.getChart('chart-{chart}').data.datasets[{dataset}].data.length")


wait_for("loss, samples/s, buffer and job-state points", lambda: points("loss") >= 3 and points("samples") >= 3
         and points("buffer") >= 3 and points("jobs", 2) > 0 and points("steps") >= 3, 180)
wait_for("the repetition histogram", lambda: js("return Chart.getChart('chart-repetitions').data.labels.length") > 1, 60)
# --- paused and quiet: the page's numbers equal /api/status ---
m.ok("/api/pause", "POST")
wait_for("no simulation running", lambda: m.ok("/api/status")["simulations"]["running"] == 0, 120)
before = m.ok("/api/status")
wait_for("the steps to settle", lambda: (lambda s: s["steps_stored"] == before["steps_stored"] or
                                         before.update(s))(m.ok("/api/status")) or
         m.ok("/api/status")["steps_stored"] == before["steps_stored"], 30)
time.sleep(1)
seen = int(js("return document.body.dataset.refreshes"))
wait_for("two more refreshes", lambda: int(js("return document.body.dataset.refreshes")) >= seen + 2, 30)
status = m.ok("/api/status")
page = {k: driver.find_element(By.ID, "st-" + k).text
        for k in ("requested", "completed", "running", "pending", "failed", "retries", "steps_stored", "job_limit")}
api = dict(status["simulations"], steps_stored=status["steps_stored"], job_limit=status["job_limit"])
check(page == {k: str(api[k]) for k in page}, f"the page's numbers equal /api/status ({page})")
check(driver.find_element(By.ID, "st-state").text == status["state"] and
      driver.find_element(By.ID, "st-paused").is_displayed(), f"the page shows the state and the pause ({status['state']})")
rows = driver.find_elements(By.CSS_SELECTOR, "#job-table tbody tr")
check(len(rows) == len(m.ok("/api/jobs")["jobs"]), f"the job table lists every job ({len(rows)})")
Select(driver.find_element(By.ID, "job-filter")).select_by_visible_text("cancelled")
cells = [r.find_elements(By.TAG_NAME, "td")[0].text for r in driver.find_elements(By.CSS_SELECTOR, "#job-table tbody tr")]
check(cells == [str(victim["id"])], f"the state filter shows the cancelled job only ({cells})")
Select(driver.find_element(By.ID, "job-filter")).select_by_visible_text("all")
driver.save_screenshot(os.path.join(ARTIFACTS, "monitor-dashboard.png"))
check(os.path.getsize(os.path.join(ARTIFACTS, "monitor-dashboard.png")) > 10000,
      f"screenshot saved: {ARTIFACTS}/monitor-dashboard.png")

# --- resumed: Breed's executed parameters ---
m.ok("/api/resume", "POST")
for path in ("/api/status", "/api/jobs", "/api/training?since=-1", "/api/buffer", "/api/steering"):
    t0 = time.time()
    m.ok(path)
    print(f"   {path}: {1000 * (time.time() - t0):.0f} ms", flush=True)
wait_for("Breed's executed parameters", lambda: js("return !document.getElementById('breed').hidden") and
         sum(points("breed", k) for k in range(3)) >= 4, 120)
names = [o.text for o in Select(driver.find_element(By.ID, "breed-y")).options]
check(names == ["T0", "T1", "T2", "T3", "T4"], f"the Breed axes offer the study's parameters ({names})")
Select(driver.find_element(By.ID, "breed-y")).select_by_visible_text("T3")
check(js("return Chart.getChart('chart-breed').options.scales.y.title.text") == "T3", "the y axis follows the choice")

driver.save_screenshot(os.path.join(ARTIFACTS, "monitor-breed.png"))

# --- the rest of the study, then its dashboard from summary.json ---
try:
    run.wait(timeout=300)
except subprocess.TimeoutExpired:
    fail("the study did not finish")
check(run.returncode == 0, f"the study completes (exit {run.returncode})")
summary = json.load(open(os.path.join(out, "summary.json")))
served = start([RUN, "--monitor-only", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
url = served.stdout.readline().strip().split(": ", 1)[1]
driver.get(url)
wait_for("the finished study's page", lambda: js("return document.body.dataset.ready") == "1", 60)
wait_for("its loss chart", lambda: points("loss") >= 3, 30)
check(driver.find_element(By.ID, "st-completed").text == str(summary["simulations"]["completed"]) and
      "finished" in driver.find_element(By.ID, "st-state").text and
      "This study has ended" in driver.find_element(By.ID, "banner").text and
      not driver.find_element(By.ID, "controls").is_displayed(),
      "a finished study renders from summary.json")
driver.save_screenshot(os.path.join(ARTIFACTS, "monitor-finished.png"))
served.send_signal(signal.SIGINT)
served.wait(timeout=30)
print("all dashboard checks passed", flush=True)
