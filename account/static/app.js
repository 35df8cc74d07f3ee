// The "your devices" page. The refresh token lives in an HttpOnly cookie
// that this script cannot read; the access token lives in a variable only,
// never in storage.
"use strict";

let accessToken = null;

const $ = (id) => document.getElementById(id);

function setStatus(text) {
  $("status").textContent = text;
}

// refresh trades the refresh cookie for a new access token. Rotor rotates
// the cookie in the same response.
async function refresh() {
  const r = await fetch("/v1/refresh", { method: "POST", headers: { "X-Rotor-CSRF": "1" }, credentials: "same-origin" });
  if (!r.ok) {
    accessToken = null;
    return false;
  }
  accessToken = (await r.json()).access_token;
  return true;
}

// call sends an API request with the access token, refreshing it once when
// it has expired.
async function call(method, path, body) {
  const send = () => fetch(path, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + accessToken }, body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  let r = await send();
  if (r.status === 401 && await refresh()) {
    r = await send();
  }
  return r;
}

function showLogin(message) {
  $("account").hidden = true;
  $("login-form").hidden = false;
  setStatus(message || "");
}

function browserName(userAgent) {
  if (!userAgent) return "unknown";
  for (const [name, pattern] of [["Edge", /Edg\//], ["Chrome", /Chrom(e|ium)\//], ["Firefox", /Firefox\//], ["Safari", /Safari\//], ["curl", /^curl\//]]) {
    if (pattern.test(userAgent)) return name;
  }
  return userAgent.slice(0, 40);
}

function when(timestamp) {
  return new Date(timestamp).toLocaleString();
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function showSessions() {
  const me = await call("GET", "/v1/me");
  if (!me.ok) {
    showLogin("Your session ended. Log in again.");
    return;
  }
  $("who").textContent = (await me.json()).username;
  const r = await call("GET", "/v1/sessions");
  if (!r.ok) {
    showLogin("Your session ended. Log in again.");
    return;
  }
  const list = (await r.json()).sessions;
  const body = $("sessions").querySelector("tbody");
  body.replaceChildren();
  for (const s of list) {
    const row = document.createElement("tr");
    row.dataset.sessionId = s.session_id;
    if (s.current) row.className = "current";
    const device = cell(row, s.device_name || s.device_id || "unnamed device");
    if (s.current) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "this device";
      device.appendChild(badge);
    }
    cell(row, browserName(s.user_agent));
    cell(row, s.ip || "");
    cell(row, when(s.last_refreshed_at));
    cell(row, when(s.created_at));
    const action = cell(row, "");
    if (!s.current) {
      const end = document.createElement("button");
      end.type = "button";
      end.className = "end";
      end.dataset.sessionId = s.session_id;
      end.textContent = "End";
      end.addEventListener("click", () => endSession(s.session_id));
      action.appendChild(end);
    }
    body.appendChild(row);
  }
  $("login-form").hidden = true;
  $("account").hidden = false;
}

async function endSession(id) {
  const r = await call("DELETE", "/v1/sessions/" + encodeURIComponent(id));
  setStatus(r.ok ? "Session ended." : "Could not end the session (" + r.status + ").");
  await showSessions();
}

async function logout(scope) {
  const r = await call("POST", "/v1/logout", { scope });
  if (scope === "all" && r.ok) {
    accessToken = null;
    showLogin("Every session ended, this one too.");
    return;
  }
  setStatus(r.ok ? "Every other session ended." : "Could not end the sessions (" + r.status + ").");
  await showSessions();
}

async function login(event) {
  event.preventDefault();
  const r = await fetch("/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      username: $("username").value,
      password: $("password").value,
      device_name: "Account page",
      token_delivery: "cookie",
    }),
    credentials: "same-origin",
  });
  $("password").value = "";
  if (!r.ok) {
    const problem = await r.json().catch(() => ({}));
    setStatus(problem.detail || "Login failed (" + r.status + ").");
    return;
  }
  accessToken = (await r.json()).access_token;
  setStatus("");
  await showSessions();
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("end-others").addEventListener("click", () => logout("others"));
  $("end-all").addEventListener("click", () => logout("all"));
  if (await refresh()) {
    await showSessions();
  } else {
    showLogin();
  }
  // Sessions started or ended elsewhere show up without a reload.
  setInterval(() => { if (accessToken) showSessions(); }, 2000);
}

start();
