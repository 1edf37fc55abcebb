// vmshiftd's web view: plain JavaScript, no build step. The pages are
// rendered by the daemon and read without this file; it adds live progress
// (the /api/v1/events stream) and the changes (start, cancel, repair, bulk),
// which go to the REST API as JSON like any other client's.
"use strict";

document.documentElement.classList.add("js");

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let doc = null;
  try { doc = await r.json(); } catch (e) { doc = null; }
  return { status: r.status, doc };
}

function errorText(res) {
  if (res.doc && res.doc.error && res.doc.error.message) return res.doc.error.message;
  return "HTTP " + res.status;
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function locationOf(job) {
  const l = job.location || {};
  return l.verified && l.host ? l.host : (l.detail || "");
}

// the progress cell of a job row or the job page
function setProgress(cell, job) {
  if (!cell) return;
  const bar = cell.querySelector("progress");
  const pct = cell.querySelector(".pct");
  if (job.percent >= 0) {
    bar.value = job.percent;
    pct.textContent = Math.round(job.percent) + "%";
  } else if (job.state !== "running") {
    bar.value = 0;
    pct.textContent = "";
  }
}

// a job's schedule: in a row while its switchover is to come (as `vmshift
// jobs`), on the job's page always
function setSchedule(node, job) {
  const sch = node.querySelector(".schedule");
  const sc = job.switchover;
  if (!sch || !sc) return;
  if (sch.dataset.in === "page") {
    sch.textContent = sc.text || "";
    sch.dataset.state = sc.state;
  } else {
    const toCome = sc.state === "waiting" || sc.state === "scheduled";
    sch.textContent = toCome && sc.text ? ", " + sc.text : "";
  }
}

function setState(node, job) {
  node.className = node.className.replace(/\bstate-\S+/g, "").trim() + " state-" + job.state;
  const badge = node.querySelector(".state .badge");
  if (badge) badge.textContent = job.state;
  const phase = node.querySelector(".phase");
  if (phase) phase.textContent = job.phase;
  setSchedule(node, job);
  const loc = node.querySelector(".location");
  if (loc) loc.textContent = locationOf(job);
  setProgress(node.querySelector(".progress"), job);
}

// as the daemon writes times: 2026-01-31 08:00:00, local time
function localTime(t) {
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
    p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

function newRow(job) {
  const tr = el("tr", { id: "job-" + job.id, "data-id": job.id, class: "state-" + job.state });
  const idCell = el("td");
  idCell.appendChild(el("a", { href: "/jobs/" + job.id }, String(job.id)));
  tr.appendChild(idCell);
  tr.appendChild(el("td", {}, job.kind));
  tr.appendChild(el("td", {}, job.backend));
  tr.appendChild(el("td", { class: "vm" }, job.vm));
  const st = el("td", { class: "state" });
  st.appendChild(el("span", { class: "badge" }, job.state));
  tr.appendChild(st);
  const ph = el("td", { class: "phase-cell" });
  ph.appendChild(el("span", { class: "phase" }, job.phase));
  ph.appendChild(el("span", { class: "schedule", "data-in": "row" }));
  tr.appendChild(ph);
  const pc = el("td", { class: "progress" });
  pc.appendChild(el("progress", { max: "100" }));
  pc.appendChild(document.createTextNode(" "));
  pc.appendChild(el("span", { class: "pct" }));
  tr.appendChild(pc);
  const t = job.started || job.created;
  tr.appendChild(el("td", {}, t ? localTime(t) : ""));
  tr.appendChild(el("td", { class: "location" }, locationOf(job)));
  setProgress(pc, job);
  setSchedule(tr, job);
  return tr;
}

// a job of the jobs list: updated in place, or added at the top
function showJob(job) {
  const tbody = document.querySelector("#jobs tbody");
  if (!tbody) return;
  const row = document.getElementById("job-" + job.id);
  if (row) setState(row, job);
  else tbody.insertBefore(newRow(job), tbody.firstChild);
}

function follow(onJob) {
  if (!window.EventSource) return;
  const es = new EventSource("/api/v1/events");
  es.addEventListener("job", (ev) => {
    try { onJob(JSON.parse(ev.data)); } catch (e) { /* a line we do not know */ }
  });
}

// ---- the jobs view ----------------------------------------------------------------

function jobsView(view) {
  follow(showJob);
  const form = document.getElementById("start-form");
  if (!form) return;
  const vm = document.getElementById("start-vm");
  const to = document.getElementById("start-to");
  const out = document.getElementById("start-result");
  // only the hosts of the VM's backend
  const filterHosts = () => {
    const b = vm.selectedOptions[0] ? vm.selectedOptions[0].dataset.backend : null;
    let first = null;
    for (const o of to.options) {
      o.hidden = b !== null && o.dataset.backend !== b;
      if (!o.hidden && first === null) first = o;
    }
    if (to.selectedOptions[0] && to.selectedOptions[0].hidden && first) to.value = first.value;
  };
  vm.addEventListener("change", filterHosts);
  filterHosts();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { vm: vm.value, to: to.value };
    const type = document.getElementById("start-type").value;
    if (type === "live") body.live = true;
    if (type === "cold") body.cold = true;
    out.textContent = "starting…";
    const res = await api("POST", "/api/v1/jobs", body);
    if (res.status === 201 && res.doc) {
      out.textContent = "";
      out.appendChild(el("a", { href: "/jobs/" + res.doc.id, id: "started-job" },
                         "job " + res.doc.id + " started"));
      showJob(res.doc);
    } else {
      out.textContent = "not started: " + errorText(res);
    }
  });
}

// ---- one job --------------------------------------------------------------------

async function reloadJob(id) {
  // the log and the phases as the daemon renders them
  const r = await fetch("/jobs/" + id, { credentials: "same-origin" });
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  const fresh = doc.getElementById("job");
  const cur = document.getElementById("job");
  if (fresh && cur) {
    cur.replaceWith(fresh);
    bindJobButtons(fresh);
  }
}

function bindJobButtons(article) {
  const id = article.dataset.id;
  const out = document.getElementById("action-result");
  const cancel = document.getElementById("cancel");
  const repair = document.getElementById("repair");
  if (cancel) cancel.addEventListener("click", async () => {
    const res = await api("POST", "/api/v1/jobs/" + id + "/cancel", {});
    out.textContent = res.status === 202 ? "cancel requested" : "not cancelled: " + errorText(res);
  });
  if (repair) repair.addEventListener("click", async () => {
    const body = { mode: document.getElementById("repair-mode").value };
    const reason = document.getElementById("repair-reason").value.trim();
    if (reason) body.reason = reason;
    const res = await api("POST", "/api/v1/jobs/" + id + "/repair", body);
    out.textContent = res.status === 201 ? "repair started" : "not repaired: " + errorText(res);
    if (res.status === 201) reloadJob(id);
  });
}

function jobView(view) {
  const article = document.getElementById("job");
  if (!article) return;
  const id = Number(article.dataset.id);
  let last = article.className + "|" + (article.querySelector(".phase") || {}).textContent;
  bindJobButtons(article);
  follow((job) => {
    if (job.id !== id) return;
    const cur = document.getElementById("job");
    setState(cur, job);
    const key = "state-" + job.state + "|" + job.phase;
    if (!last.endsWith(key)) reloadJob(id);
    last = key;
  });
}

// ---- bulk plans -----------------------------------------------------------------

async function reloadBulks() {
  const r = await fetch("/bulk", { credentials: "same-origin" });
  if (!r.ok) return false;
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  const fresh = doc.getElementById("bulks");
  if (fresh) document.getElementById("bulks").replaceWith(fresh);
  return document.querySelector("#bulks .bulk.state-running") !== null;
}

function pollBulks() {
  const tick = async () => {
    if (await reloadBulks()) setTimeout(tick, 700);
  };
  tick();
}

function bulkView(view) {
  const form = document.getElementById("bulk-form");
  if (document.querySelector("#bulks .bulk.state-running")) pollBulks();
  if (!form) return;
  const out = document.getElementById("bulk-result");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const plan = document.getElementById("bulk-plan").value;
    out.textContent = "submitting…";
    const res = await api("POST", "/api/v1/jobs", { kind: "bulk", plan });
    if (res.status === 201 && res.doc) {
      out.textContent = "bulk plan " + res.doc.id + " running";
      pollBulks();
    } else {
      out.textContent = "not run: " + errorText(res);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const view = document.getElementById("view");
  if (!view) return;
  if (view.dataset.canChange !== "1") {
    for (const b of document.querySelectorAll(".js-only button")) b.disabled = true;
  }
  ({ jobs: jobsView, job: jobView, bulk: bulkView }[view.dataset.view] || (() => {}))(view);
});
