// The browser side of classifier.photo_input.PhotoInput (anywidget: a default export with render()).
// Checks the limits before sending anything, then streams each file to the kernel in chunks,
// one binary buffer per message, at most two chunks ahead of the kernel's acknowledgements.

const IN_FLIGHT = 2;
const ANSWER_TIMEOUT_MS = 60000;

function uploadId() {
  // crypto.randomUUID exists only on https and localhost; the id only tells uploads apart.
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

function filesIn(transfer) {
  if (!transfer) return [];
  const files = Array.from(transfer.files || []);
  if (files.length) return files;
  // Some sources (a copied image) fill only the items.
  return Array.from(transfer.items || [])
    .filter((item) => item.kind === "file")
    .map((item) => item.getAsFile())
    .filter(Boolean);
}

function isEditable(target) {
  return !!target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

// ipywidgets tells the page only when the server reports its kernel dead; when the server itself is
// gone (a hub's server out of memory, a lost network) the page would retry for minutes in silence.
// The body's "mn-offline" class (styled in classifier/ui.py) says so once reconnecting fails a while.
const OFFLINE_AFTER_MS = 10000;

function watchConnection(model) {
  const changed = model.widget_manager?.kernel?.connectionStatusChanged;
  if (!changed) return () => {};
  let timer;
  function onStatus(_kernel, status) {
    clearTimeout(timer);
    if (status === "connected") {
      document.body.classList.remove("mn-offline");
    } else {
      const delay = status === "disconnected" ? 0 : OFFLINE_AFTER_MS;
      timer = setTimeout(() => document.body.classList.add("mn-offline"), delay);
    }
  }
  changed.connect(onStatus);
  return () => {
    clearTimeout(timer);
    changed.disconnect(onStatus);
  };
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "mn-photo-input";
  const picker = document.createElement("input");
  Object.assign(picker, {
    type: "file", accept: model.get("accept"), multiple: model.get("limits").max_files > 1, hidden: true,
  });
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = model.get("label");
  const drop = document.createElement("div");
  drop.className = "mn-drop";
  drop.tabIndex = 0;
  drop.setAttribute("role", "button");
  drop.setAttribute("aria-label", model.get("prompt"));
  drop.textContent = model.get("prompt");
  const sending = document.createElement("p");
  sending.className = "mn-sending";
  sending.setAttribute("aria-live", "polite");
  root.append(button, picker, drop, sending);
  el.appendChild(root);

  let current = null; // the upload on its way: {id, acked, failed, wake}
  let waiting = null; // files chosen while the app was busy: sent as soon as it is free

  function refresh() {
    const off = model.get("disabled") || current !== null;
    button.disabled = off;
    drop.setAttribute("aria-disabled", String(off));
  }

  function settle(upload, outcome) {
    if (current === upload) current = null;
    sending.textContent = outcome || "";
    refresh();
    setTimeout(sendWaiting, 0); // files dropped during this upload go next
  }

  // The app turns inputs off while it works (adding photos, renaming, training); files chosen
  // meanwhile, or refused by the kernel as busy before the page heard of it, wait their turn.
  function sendWhenFree(files) {
    waiting = files;
    sending.textContent = "Waiting for the app to finish…";
    setTimeout(sendWaiting, 1000); // in case the app was free again before the page knew it was busy
  }

  function sendWaiting() {
    if (!waiting || current || model.get("disabled")) return;
    const files = waiting;
    waiting = null;
    send(files);
  }

  function answered(upload, count) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the app did not answer")), ANSWER_TIMEOUT_MS);
      upload.wake = () => {
        if (upload.failed) { clearTimeout(timer); reject(new Error(upload.failed)); }
        else if (upload.acked >= count) { clearTimeout(timer); resolve(); }
      };
      upload.wake();
    });
  }

  async function send(files) {
    if (!files.length) return;
    if (current || model.get("disabled")) {
      sendWhenFree(files);
      return;
    }
    const limits = model.get("limits");
    const kept = files.filter((file) => file.size <= limits.max_file_bytes);
    const bytes = kept.reduce((sum, file) => sum + file.size, 0);
    if (files.length > limits.max_files || bytes > limits.max_total_bytes) {
      // Nothing is sent but the facts: the kernel words the message, as for its own checks.
      model.send({ type: "refused", files: files.length, bytes });
      return;
    }
    const upload = { id: uploadId(), acked: -1, failed: null, wake() {} };
    current = upload;
    refresh();
    try {
      model.send({
        type: "begin", upload: upload.id,
        files: files.map((file) => ({ name: file.name, size: file.size })),
      });
      await answered(upload, 0); // "ready": the kernel accepted what was announced
      let chunks = 0, done = 0;
      for (const [index, file] of files.entries()) {
        if (file.size > limits.max_file_bytes) continue; // held back: the kernel says why
        for (let offset = 0; offset < file.size; offset += limits.chunk_bytes) {
          await answered(upload, chunks - IN_FLIGHT + 1);
          const buffer = await file.slice(offset, offset + limits.chunk_bytes).arrayBuffer();
          model.send({ type: "chunk", upload: upload.id, file: index, offset }, undefined, [buffer]);
          chunks += 1;
          done += buffer.byteLength;
          sending.textContent = `Sending… ${Math.round((100 * done) / Math.max(bytes, 1))}%`;
        }
      }
      await answered(upload, chunks);
      model.send({ type: "end", upload: upload.id });
      settle(upload, "");
    } catch (error) {
      if (upload.failed === "busy") {
        settle(upload, "");
        sendWhenFree(files);
        return;
      }
      settle(upload, upload.failed ? "" : `The photos could not be sent (${error.message}). Please try again.`);
    }
  }

  model.on("msg:custom", (message) => {
    if (!current || !message || message.upload !== current.id) return;
    if (message.type === "ready") current.acked = 0;
    else if (message.type === "ack") current.acked += 1;
    else if (message.type === "abort") current.failed = message.reason === "busy" ? "busy" : "refused";
    current.wake();
  });
  model.on("change:disabled", () => {
    refresh();
    sendWaiting();
  });

  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    const files = Array.from(picker.files || []);
    picker.value = ""; // so that choosing the same photo again is noticed
    send(files);
  });
  drop.addEventListener("click", () => { if (!button.disabled) picker.click(); });
  drop.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && !button.disabled) {
      event.preventDefault();
      picker.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("mn-over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("mn-over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("mn-over");
    send(filesIn(event.dataTransfer));
  });

  // Paste anywhere on the page, except into a text field, goes to the first input shown that
  // takes pastes (a hidden tab's is not shown); a file dropped beside the area must not make the
  // browser open it and leave the app.
  function onPaste(event) {
    const shown = el.isConnected && el.getClientRects().length > 0;
    if (event.defaultPrevented || !shown || !model.get("paste") || isEditable(event.target)) return;
    const files = filesIn(event.clipboardData);
    if (!files.length) return;
    event.preventDefault(); // one paste, one upload, however many views the widget has
    send(files);
  }
  function keepPage(event) {
    if (Array.from(event.dataTransfer?.types || []).includes("Files")) event.preventDefault();
  }
  document.addEventListener("paste", onPaste);
  document.addEventListener("dragover", keepPage);
  document.addEventListener("drop", keepPage);
  refresh();
  const stopWatching = watchConnection(model);
  return () => {
    stopWatching();
    document.removeEventListener("paste", onPaste);
    document.removeEventListener("dragover", keepPage);
    document.removeEventListener("drop", keepPage);
  };
}

export default { render };
