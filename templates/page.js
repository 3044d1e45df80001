// The test page: every form calls the gateway with fetch and the token in an Authorization header.
// All text from the server is written with textContent (never innerHTML), so nothing it says can run.
"use strict";

(() => {
  const body = document.body;
  const endpoint = body.dataset.endpoint;
  const jobsUrl = body.dataset.jobs;
  const prefix = body.dataset.originPrefix || "";
  const tokenInput = document.getElementById("token");
  const remember = document.getElementById("remember");
  const KEY = "airflow-rest-gateway-token";

  tokenInput.value = sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
  remember.checked = localStorage.getItem(KEY) !== null;
  const saveToken = () => {
    sessionStorage.setItem(KEY, tokenInput.value);
    if (remember.checked) localStorage.setItem(KEY, tokenInput.value);
    else localStorage.removeItem(KEY);
  };
  tokenInput.addEventListener("input", saveToken);
  remember.addEventListener("change", saveToken);
  const auth = () => ({ Authorization: `Bearer ${tokenInput.value.trim()}` });

  // --- filter ------------------------------------------------------------------------------------
  const filter = document.getElementById("filter");
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const el of document.querySelectorAll("section.api, ul.directory li")) {
      el.hidden = q !== "" && !el.dataset.name.includes(q);
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement.tagName !== "INPUT" && document.activeElement.tagName !== "TEXTAREA") {
      e.preventDefault();
      filter.focus();
    }
  });

  // --- rendering -----------------------------------------------------------------------------------
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  function summary(result) {
    const ok = result.status === "OK";
    const parts = [`${result.status || "?"} · HTTP ${result.http_response_code ?? "?"}`];
    if (result.exit_code !== undefined && result.exit_code !== null) parts.push(`exit ${result.exit_code}`);
    if (result.duration_s !== undefined) parts.push(`${result.duration_s} s`);
    if (result.truncated) parts.push("output truncated");
    return el("div", `status ${ok ? "ok" : "error"}`, parts.join(" · "));
  }

  function explain(status, result) {
    if (status === 403 && result && result.output === "Token Authentication Failed") {
      return "403: the token was refused. Enter a valid token at the top of the page.";
    }
    return null;
  }

  function render(out, status, result) {
    out.replaceChildren();
    if (result === null || typeof result !== "object") {
      out.append(el("div", "status error", `HTTP ${status}`), el("pre", "log", String(result)));
      return;
    }
    out.append(summary(result));
    const hint = explain(status, result);
    if (hint) out.append(el("div", "hint", hint));
    const run = result.data;
    if (run && typeof run === "object" && Array.isArray(run.tasks) && run.state) {
      const tasks = run.tasks.map((ti) => `${ti.task_id} ${ti.state}`).join(", ");
      out.append(el("div", `run-state state ${run.state}`, `run ${run.state}${tasks ? ` · ${tasks}` : ""}`));
    }
    if (result.airflow_cmd) out.append(el("div", "cmd", `$ ${result.airflow_cmd}`));
    if (result.error) out.append(el("div", "error-text", result.error));
    if (result.warning) out.append(el("div", "warning", result.warning));
    if (result.job_id) out.append(el("div", "job", `job ${result.job_id} started: see Background jobs`));
    const output = result.output;
    if (output && typeof output === "object") {
      for (const stream of ["stdout", "stderr", "log"]) {
        if (output[stream]) out.append(el("div", "label", stream), el("pre", `log ${stream}`, output[stream]));
      }
    } else if (output !== undefined && output !== null && output !== "") {
      out.append(el("pre", "log", output));
    }
    if (result.data !== undefined && result.data !== null) {
      out.append(el("div", "label", "data"), el("pre", "log data", JSON.stringify(result.data, null, 2)));
    }
  }

  function formBody(form) {
    const data = new FormData();
    for (const input of form.elements) {
      if (!input.name || input.disabled) continue;
      if (input.type === "checkbox") {
        if (input.checked) data.append(input.name, "true");
      } else if (input.type === "file") {
        if (input.files.length) data.append(input.name, input.files[0]);
      } else if (input.value !== "") {
        data.append(input.name, input.value);
      }
    }
    return data;
  }

  async function readJson(resp) {
    const text = await resp.text();
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  // --- streaming -------------------------------------------------------------------------------------
  async function* ndjson(resp) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim()) yield JSON.parse(line);
      }
    }
    if (buffered.trim()) yield JSON.parse(buffered);
  }

  // A streamed event as a line of the live panel: command output, or a watched run's states and task logs.
  function liveLine(event) {
    if (event.type === "output") return el("span", event.stream, event.text);
    if (event.type === "log") return el("span", "stdout", `[${event.task_id}] ${event.text}`);
    if (event.type === "run") return el("span", "state", `run ${event.run_id}: ${event.state}`);
    if (event.type === "task") return el("span", "state", `task ${event.task_id}: ${event.state}`);
    return null;
  }

  async function stream(form, out, url, data) {
    const controller = new AbortController();
    const cancel = form.querySelector(".cancel");
    cancel.hidden = false;
    cancel.onclick = () => controller.abort();
    out.replaceChildren(el("div", "status running", "running…"));
    const live = el("pre", "log live");
    out.append(live);
    try {
      const resp = await fetch(`${url}&stream=true`, { method: "POST", body: data, headers: auth(), signal: controller.signal });
      if (!(resp.headers.get("Content-Type") || "").startsWith("application/x-ndjson")) {
        render(out, resp.status, await readJson(resp));
        return;
      }
      for await (const event of ndjson(resp)) {
        const line = liveLine(event);
        if (line) {
          live.append(line, document.createTextNode("\n"));
          live.scrollTop = live.scrollHeight;
        } else if (event.type === "result") {
          const lines = live;
          render(out, event.http_response_code, event);
          out.append(el("div", "label", "output"), lines);
        }
      }
    } catch (err) {
      if (err.name === "AbortError") {
        out.firstChild.textContent = "cancelled: the command was stopped";
        out.firstChild.className = "status error";
      } else {
        out.append(el("div", "status error", `request failed: ${err}`));
      }
    } finally {
      cancel.hidden = true;
    }
  }

  // --- forms -------------------------------------------------------------------------------------
  for (const form of document.querySelectorAll("form[data-api]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = form.querySelector(".output");
      const data = formBody(form);
      const url = `${endpoint}?api=${encodeURIComponent(form.dataset.api)}`;
      const background = form.querySelector("input.async");
      if (background && background.checked) {
        data.append("async", "true");
      } else if (form.dataset.stream === "true" || form.querySelector('input[name="wait"]:checked')) {
        await stream(form, out, url, data);
        return;
      }
      out.replaceChildren(el("div", "status running", "running…"));
      try {
        const resp = await fetch(url, { method: "POST", body: data, headers: auth() });
        render(out, resp.status, await readJson(resp));
        if (resp.status === 202) refreshJobs();
      } catch (err) {
        out.replaceChildren(el("div", "status error", `request failed: ${err}`));
      }
    });
  }

  // --- jobs ----------------------------------------------------------------------------------------
  const jobsBody = document.querySelector("#jobs-table tbody");
  const jobsLog = document.getElementById("jobs-log");
  const absolute = (path) => (path.startsWith(prefix) ? path : prefix + path);

  async function refreshJobs() {
    const resp = await fetch(jobsUrl, { headers: auth() });
    if (!resp.ok) {
      jobsBody.replaceChildren(el("tr", null));
      jobsBody.firstChild.append(el("td", "muted", resp.status === 403 ? "enter a valid token to see jobs" : `HTTP ${resp.status}`));
      return;
    }
    const { jobs } = await resp.json();
    jobsBody.replaceChildren();
    for (const job of jobs) {
      const row = el("tr");
      row.dataset.job = job.id;
      row.append(el("td", "mono", job.id), el("td", null, job.api), el("td", `state ${job.state}`, job.state), el("td", null, job.started_at || ""));
      const actions = el("td");
      const follow = el("button", null, "Follow");
      follow.type = "button";
      follow.onclick = () => followJob(job);
      actions.append(follow);
      if (!["succeeded", "failed", "cancelled", "timed_out", "lost"].includes(job.state)) {
        const cancel = el("button", null, "Cancel");
        cancel.type = "button";
        cancel.onclick = async () => {
          await fetch(absolute(job.cancel_url), { method: "DELETE", headers: auth() });
          refreshJobs();
        };
        actions.append(cancel);
      }
      row.append(actions);
      jobsBody.append(row);
    }
  }

  async function followJob(job) {
    jobsLog.hidden = false;
    jobsLog.replaceChildren(el("span", "muted", `job ${job.id} (${job.api})\n`));
    const resp = await fetch(`${absolute(job.log_url)}?stream=true`, { headers: auth() });
    for await (const event of ndjson(resp)) {
      if (event.type === "output") jobsLog.append(el("span", event.stream, event.text), document.createTextNode("\n"));
      else if (event.type === "result") jobsLog.append(el("span", `state ${event.state}`, `[${event.state}] exit ${event.exit_code}\n`));
    }
    refreshJobs();
  }

  document.getElementById("jobs-refresh").addEventListener("click", refreshJobs);
  if (tokenInput.value) refreshJobs();
})();
