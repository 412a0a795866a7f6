// live.js keeps a dashboard page current without a reload. Every few
// hundred milliseconds it asks the server for the version of what the page
// shows; when it changed, it fetches the page again and swaps in the parts
// marked data-live. Those parts are rendered by the server's html/template,
// so every value in them is already escaped; the script never builds markup
// from data, and the only text it writes itself goes through textContent.
"use strict";
(function () {
  const body = document.body;
  const url = body.dataset.versionUrl;
  if (!url) return;
  const every = Number(body.dataset.poll) || 1000;
  let version = body.dataset.version;
  let busy = false;
  const stamp = document.getElementById("live-time");
  const badge = document.getElementById("live");

  function setState(ok) {
    if (badge) badge.classList.toggle("offline", !ok);
    if (badge) badge.title = ok ? "the page updates itself when a trial lands" : "the dashboard does not answer; retrying";
  }

  async function refresh() {
    const res = await fetch(location.href, { cache: "no-store", headers: { "Accept": "text/html" } });
    if (!res.ok) throw new Error("page: " + res.status);
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    for (const old of document.querySelectorAll("[data-live]")) {
      const fresh = doc.getElementById(old.id);
      if (fresh) old.replaceWith(document.importNode(fresh, true));
    }
    version = doc.body.dataset.version;
    document.title = doc.title;
    if (stamp) stamp.textContent = new Date().toLocaleTimeString([], { hour12: false });
    body.dataset.version = version;
    body.dataset.refreshed = String(Date.now());
  }

  async function tick() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(url, { cache: "no-store" });
      if (!res.ok) throw new Error("version: " + res.status);
      const v = (await res.json()).version;
      if (v !== version) await refresh();
      setState(true);
    } catch (e) {
      setState(false);
    } finally {
      busy = false;
    }
  }
  setInterval(tick, every);
})();
