// Participant pages: response timing, image preloading, ranking by drag or keyboard,
// single submission. Pages work without this script except for reordering rankings.
(function () {
  "use strict";

  // A page answering a form (the next trial after an answer) takes the session's address in the
  // history: reloading or going back then asks for the current step, the form is not resent.
  var session = document.body.dataset.session;
  if (session && window.location.pathname.indexOf(session + "trial/") === 0 && window.history.replaceState) {
    window.history.replaceState(null, "", session);
  }

  // Submit a form only once (double clicks, Enter held down).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      // Defer disabling so the clicked button's name/value is still sent.
      setTimeout(function () {
        form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });

  // Language menu: submit on change (the button remains for keyboard and no-script use).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  var form = document.querySelector("form[data-trial]");
  if (!form) { return; }

  var scale = form.querySelector(".scale");
  if (scale) { scale.style.setProperty("--points", String(form.querySelectorAll(".point").length)); }

  // Response time: from the moment every stimulus has loaded to submission.
  var images = Array.prototype.slice.call(form.querySelectorAll("img[data-stimulus]"));
  var onset = null;
  var pending = images.length;
  var loading = form.querySelector("[data-loading]");
  function stimulusReady() {
    pending -= 1;
    if (pending <= 0 && onset === null) {
      onset = performance.now();
      if (loading) { loading.hidden = true; }
      preloadNext();
    }
  }
  // One display box for every stimulus (the artwork too): a square whose side
  // is the smallest native long side among them, at most 28rem, so each image
  // fills the same box and none is enlarged beyond its own pixels; CSS
  // max-width shrinks them alike where there is less room.
  var sized = 0;
  function sizeStimuli() {
    sized += 1;
    if (sized < images.length) { return; }
    var loaded = images.filter(function (img) { return img.naturalWidth > 0; });
    if (!loaded.length) { return; }
    var rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    var sides = loaded.map(function (img) { return Math.max(img.naturalWidth, img.naturalHeight); });
    var box = Math.min(Math.min.apply(null, sides), 28 * rem);
    loaded.forEach(function (img) {
      img.style.width = (img.naturalWidth * box / Math.max(img.naturalWidth, img.naturalHeight)) + "px";
    });
    form.dataset.stimulusBox = String(Math.round(box));
  }
  images.forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { sizeStimuli(); }
    else { img.addEventListener("load", sizeStimuli); img.addEventListener("error", sizeStimuli); }
  });

  // Click or tap (or a button, where a click chooses the image) shows an image at its full size.
  var dialog = null;
  function zoom(img) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "zoom";
      dialog.appendChild(document.createElement("img"));
      dialog.appendChild(document.createElement("p"));
      dialog.addEventListener("click", function () { dialog.close(); });
      document.body.appendChild(dialog);
    }
    var big = dialog.querySelector("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    // Own size (never enlarged), scaled down to fit the screen with its proportions kept (CSS max-width/height).
    dialog.querySelector("p").textContent = (form.dataset.zoomNote || "")
      .replace("{w}", img.naturalWidth).replace("{h}", img.naturalHeight);
    dialog.showModal();
  }
  images.forEach(function (img) {
    var chooses = img.closest("label, li");
    if (chooses) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "small zoom-button";
      button.textContent = form.dataset.zoomLabel || "+";
      button.addEventListener("click", function (event) { event.preventDefault(); zoom(img); });
      img.insertAdjacentElement("afterend", button);
    } else {
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      img.addEventListener("click", function () { zoom(img); });
      img.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); zoom(img); }
      });
    }
  });

  if (pending === 0) { onset = performance.now(); }
  images.forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { stimulusReady(); }
    else {
      if (loading) { loading.hidden = false; }
      img.addEventListener("load", stimulusReady);
      img.addEventListener("error", stimulusReady);
    }
  });

  // Preload the next trial's images so it appears without delay.
  function preloadNext() {
    (form.dataset.preload || "").split(" ").filter(Boolean).forEach(function (url) {
      var img = new Image();
      img.src = url;
    });
  }

  form.addEventListener("submit", function () {
    var rt = form.querySelector("input[name=client_rt_ms]");
    if (rt && onset !== null) { rt.value = String(Math.max(0, Math.round(performance.now() - onset))); }
  });

  // Ranking: drag and drop, or Move up / Move down buttons (keyboard and touch).
  var list = form.querySelector("[data-ranking]");
  if (!list) { return; }
  var hidden = form.querySelector("input[name=ranking]");
  var announce = form.querySelector("[data-announce]");

  function sync() {
    var slots = Array.prototype.map.call(list.children, function (li) { return li.dataset.slot; });
    hidden.value = slots.join(",");
  }
  function say(li) {
    if (!announce) { return; }
    var pos = Array.prototype.indexOf.call(list.children, li) + 1;
    announce.textContent = (announce.dataset.template || "{pos}").replace("{pos}", String(pos));
  }
  function move(li, delta) {
    if (delta < 0 && li.previousElementSibling) { list.insertBefore(li, li.previousElementSibling); }
    else if (delta > 0 && li.nextElementSibling) { list.insertBefore(li.nextElementSibling, li); }
    sync();
    say(li);
  }
  list.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-move]");
    if (!button) { return; }
    var li = button.closest("li");
    move(li, parseInt(button.dataset.move, 10));
    // Keep focus on the same control of the moved item.
    button.focus();
  });

  var dragged = null;
  list.addEventListener("dragstart", function (event) {
    dragged = event.target.closest("li");
    if (!dragged) { return; }
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.slot);
  });
  list.addEventListener("dragover", function (event) {
    if (!dragged) { return; }
    event.preventDefault();
    var over = event.target.closest("li");
    if (!over || over === dragged) { return; }
    var rect = over.getBoundingClientRect();
    var after = event.clientY > rect.top + rect.height / 2;
    list.insertBefore(dragged, after ? over.nextElementSibling : over);
  });
  list.addEventListener("drop", function (event) { event.preventDefault(); });
  list.addEventListener("dragend", function () {
    if (!dragged) { return; }
    dragged.classList.remove("dragging");
    sync();
    say(dragged);
    dragged = null;
  });
  sync();
})();
