// The grade book's service worker: the grade-book and homeroom pages of one school, kept for a
// reload without network. Served by transcripts.views_offline under /truong/<code>/so-diem/ (its
// scope), with self.HOCBA_ASSETS (the page's script and style sheet) and self.HOCBA_STATIC (where
// static files are served) set before this line.
// - A grade-book page (GET navigation): network first; the copy kept is served only when the
//   network fails. Other pages of the scope (index, records, history) are not touched.
// - Static files the pages use: network first too (the HTTP cache answers first anyway); the
//   grade book's own kept at install, the others when a page asks or loads them.
// - POSTs (cell saves) are not touched: the page keeps its own queue (gradebook.js).
// What is kept shows students' names: it is cleared when the user signs out (see
// docs/offline.md), and an entry is kept only from a page the server answered itself (no
// redirect, no error page).
"use strict";
const CACHE = "hocba-gradebook-v1";
const ASSETS = self.HOCBA_ASSETS || [];
const STATIC = self.HOCBA_STATIC || "/static/";
const PAGE = /\/so-diem\/(?:\d+\/[^/]+|lop\/\d+)\/$/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

async function keep(request, response) {
  if (response.ok && response.type === "basic" && !response.redirected) {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

async function networkFirst(request) {
  try {
    return await keep(request, await fetch(request));
  } catch (err) {
    const kept = await caches.match(request, { ignoreVary: true });
    if (kept) return kept;
    throw err;
  }
}

function ours(url) {
  return url.origin === location.origin && url.pathname.startsWith(self.registration.scope.replace(location.origin, ""));
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate" && ours(url) && PAGE.test(url.pathname)) event.respondWith(networkFirst(request));
  else if (url.origin === location.origin && url.pathname.startsWith(STATIC)) event.respondWith(networkFirst(request));
});

// A page opened before this worker controlled it asks for a copy of itself and of its static files.
self.addEventListener("message", (event) => {
  const wanted = (event.data && Array.isArray(event.data.keep) ? event.data.keep : []).slice(0, 50);
  const urls = wanted.map((u) => new URL(String(u), location.href)).filter((url) =>
    ours(url) ? PAGE.test(url.pathname) : url.origin === location.origin && url.pathname.startsWith(STATIC));
  event.waitUntil(Promise.all(urls.map((url) =>
    fetch(url.href, { credentials: "same-origin" }).then((r) => keep(new Request(url.href), r)).catch(() => {}))));
});
