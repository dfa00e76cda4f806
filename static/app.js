// onbehalf — progressive enhancement only; every page works without this file.
"use strict";

// Forms marked data-confirm ask before an irreversible step. The server still
// asks for its own confirmation page where it matters; this just saves a click
// for people who change their mind.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Search as you type on the end-user search page: the form still works
// without this (it is a plain GET form); with it, results follow the typing.
// The server renders the result list as a fragment, escaped like any page.
(() => {
  const form = document.querySelector("form[data-live-search]");
  const results = document.getElementById("user-results");
  if (!form || !results) return;
  const input = form.querySelector("input[name=q]");
  // The page to go on to after a pick, if the search was opened for one.
  const back = form.querySelector("input[name=return_to]");
  const returnTo = back ? "&return_to=" + encodeURIComponent(back.value) : "";
  let timer = 0;
  let latest = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (q.length < 2) return;
      const seq = ++latest;
      const url = "/users?fragment=1&q=" + encodeURIComponent(q) + returnTo;
      try {
        const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (seq !== latest) return; // a newer search is on its way
        if (res.redirected || !res.ok) return; // signed out or failed: the plain form still works
        results.innerHTML = await res.text();
        history.replaceState(null, "", "/users?q=" + encodeURIComponent(q) + returnTo);
      } catch {
        // Network trouble: leave the last results; pressing Search still works.
      }
    }, 250);
  });
})();

// Live progress of a bulk run over Server-Sent Events. Without JavaScript the
// page refreshes itself (a <noscript> meta refresh); with it, the counts move
// as rows finish and the page reloads once when the run ends. Elements marked
// data-live-if="flag" show only while the event's flag is set: the cancel
// button while the run can be cancelled, the "Cancelling…" sentence while
// rows of a cancelled run are still being sent, "Queuing rows…" while a big
// run's rows are still being queued.
(() => {
  const run = document.querySelector("[data-testid=run][data-active]");
  if (!run || !window.EventSource) return;
  const id = run.dataset.runId;
  const source = new EventSource("/bulk/runs/" + encodeURIComponent(id) + "/events");
  // The counters sit in the run card and in the rows table's tabs.
  const set = (name, value) => {
    for (const el of document.querySelectorAll("[data-live=" + name + "]")) {
      if (el instanceof HTMLProgressElement) el.value = Number(value);
      else el.textContent = String(value);
    }
  };
  source.addEventListener("progress", (event) => {
    const p = JSON.parse(event.data);
    set("state", p.state);
    set("done", p.done);
    set("failed", p.failed);
    set("skipped", p.skipped);
    set("waiting", p.waiting);
    set("remaining", p.remaining);
    set("eta", p.eta);
    set("percent", p.percent);
    set("percent-text", p.percent + "%");
    set("cancelling", p.cancelling);
    set("queuing", p.queuing);
    for (const el of run.querySelectorAll("[data-live-if]")) {
      el.hidden = !p[el.dataset.liveIf];
    }
    if (p.finished) {
      source.close();
      window.location.reload();
      return;
    }
    refreshRows(p.done + p.failed + p.skipped);
  });
  // The rows table follows the counters: when rows have ended since it was
  // drawn, its section is fetched again (at most every two seconds), unless
  // the keyboard is inside it, where a swap would lose the reader's place.
  let ended = -1, fetching = false, last = 0;
  const refreshRows = (now) => {
    const section = document.querySelector("[data-testid=rows-section][data-rows-url]");
    if (ended < 0) ended = now;
    if (!section || now === ended || fetching || Date.now() - last < 2000) return;
    if (section.contains(document.activeElement)) return;
    fetching = true;
    last = Date.now();
    fetch(section.dataset.rowsUrl, { credentials: "same-origin" })
      .then((res) => (res.ok ? res.text() : Promise.reject(res.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-testid=rows-section]");
        const current = document.querySelector("[data-testid=rows-section]");
        if (fresh && current && !current.contains(document.activeElement)) {
          current.replaceWith(fresh);
          ended = now;
        }
      })
      .catch(() => {}) // the next event tries again
      .finally(() => { fetching = false; });
  };
  // A form sent from the page (cancel, retry) leads to its own next page:
  // the stream stops, so a reload cannot replace that page and its notice.
  // Registered after the data-confirm listener, it sees a cancelled submit.
  document.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) source.close();
  });
  source.addEventListener("error", () => {
    // The browser reconnects by itself; if the run page is gone, stop trying.
    if (source.readyState === EventSource.CLOSED) source.close();
  });
})();

// The CSV drop zone on the bulk upload form. Without JavaScript the file
// input inside it is the whole control; with it, a file dragged onto the
// zone becomes the input's file, and the chosen file's name is shown.
(() => {
  const zone = document.querySelector("[data-dropzone]");
  if (!zone) return;
  const input = zone.querySelector("input[type=file]");
  const chosen = zone.querySelector("[data-chosen]");
  const hint = zone.querySelector("[data-dropzone-hint]");
  if (!input || !chosen) return;
  if (hint) hint.textContent = "Drag the CSV file here, or choose it:";
  const show = () => {
    chosen.textContent = input.files && input.files.length > 0 ? "Chosen: " + input.files[0].name : "";
  };
  input.addEventListener("change", show);
  const over = (event) => {
    event.preventDefault();
    zone.classList.add("over");
  };
  zone.addEventListener("dragenter", over);
  zone.addEventListener("dragover", over);
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = event.dataTransfer ? event.dataTransfer.files : null;
    if (!files || files.length === 0) return;
    const one = new DataTransfer();
    one.items.add(files[0]);
    input.files = one.files;
    show();
  });
})();

// Drafts. What is typed or chosen in a form marked data-draft (the request
// page's forms, a new request, the bulk upload's pasted rows) is kept in
// this browser tab (sessionStorage, gone when the tab closes) until the form
// is sent and the page that answers says it was done. A session that ended,
// a form that expired or a lost connection therefore loses nothing: when the
// form is shown again without it, it is filled in again, with a line saying
// so. The page that answers a sent form says what became of it
// (body[data-draft-sent]): "kept" (nothing was sent: the draft stays),
// "done" (or a notice: the draft goes); anything else (an error page, no
// answer at all) leaves it marked unsure, and the line then says to check
// before sending again. The key (data-draft) names the admin, the end user,
// the form and the request, so a draft is never filled into a form for
// someone else. Logging out forgets them all.
(() => {
  const prefix = "onbehalf-draft:";
  const sentKey = "onbehalf-draft-sent";
  let store;
  try {
    store = window.sessionStorage;
    store.getItem(sentKey);
  } catch {
    return; // storage switched off: the forms work as before
  }
  const read = (key) => {
    try {
      const d = JSON.parse(store.getItem(key) || "null");
      return d && typeof d.values === "object" ? d : null;
    } catch {
      return null;
    }
  };
  const write = (key, draft) => {
    try {
      store.setItem(key, JSON.stringify(draft));
    } catch {
      // Over the tab's storage quota (a very long paste): not kept.
      store.removeItem(key);
    }
  };

  const sent = store.getItem(sentKey);
  store.removeItem(sentKey);
  if (sent) {
    const verdict = document.body.dataset.draftSent ||
      (document.querySelector("[data-testid=notice]") ? "done" : "");
    if (verdict === "done") {
      store.removeItem(prefix + sent);
    } else if (verdict !== "kept") {
      const d = read(prefix + sent);
      if (d) write(prefix + sent, { values: d.values, unsure: true });
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.getAttribute("action") === "/logout") {
      for (let i = store.length - 1; i >= 0; i--) {
        const key = store.key(i);
        if (key && key.startsWith(prefix)) store.removeItem(key);
      }
    }
  });

  // The fields a draft keeps: text, choices and lists, never hidden fields
  // or files.
  const fields = (form) => Array.from(form.querySelectorAll(
    "textarea[name], input[type=text][name], input[type=radio][name], select[name]"));
  const values = (form, pick) => {
    const out = {};
    for (const f of fields(form)) {
      if (f.type === "radio") {
        if (pick(f)) out[f.name] = f.value;
      } else {
        out[f.name] = pick(f);
      }
    }
    return out;
  };
  const current = (form) => values(form, (f) => (f.type === "radio" ? f.checked : f.value));
  const initial = (form) => values(form, (f) => {
    if (f.type === "radio") return f.defaultChecked;
    if (f instanceof HTMLSelectElement) {
      const o = Array.from(f.options).find((o) => o.defaultSelected) || f.options[0];
      return o ? o.value : "";
    }
    return f.defaultValue;
  });
  const same = (a, b) => {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if ((a[k] || "") !== (b[k] || "")) return false;
    return true;
  };

  for (const form of document.querySelectorAll("form[data-draft]")) {
    const key = prefix + form.dataset.draft;
    const save = () => {
      const now = current(form);
      if (same(now, initial(form))) store.removeItem(key);
      else write(key, { values: now });
    };
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return;
      save();
      store.setItem(sentKey, form.dataset.draft);
    });

    // Fill the draft in when the form shows something else: as drawn by
    // the server (a refusal shows again what was sent: nothing to do).
    const draft = read(key);
    if (!draft || same(draft.values, current(form))) continue;
    for (const f of fields(form)) {
      if (!(f.name in draft.values)) continue;
      const v = String(draft.values[f.name]);
      if (f.type === "radio") f.checked = f.value === v;
      else f.value = v;
    }
    const note = document.createElement("p");
    note.className = draft.unsure ? "warn" : "info";
    note.setAttribute("role", "status");
    note.dataset.testid = "draft-restored";
    note.textContent = draft.unsure
      ? "You sent this before and onbehalf could not tell whether it was done. It is filled in again: check the request (or the audit trail) before you send it again."
      : "What you typed here before has not been sent. It is filled in again: check it, then send it.";
    form.prepend(note);
  }
})();
