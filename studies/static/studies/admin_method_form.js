// Method form: show only the chosen method's parameters and the weight families it runs on.
(function () {
  "use strict";
  function update() {
    var select = document.getElementById("id_method");
    if (!select) { return; }
    var chosen = select.value;
    document.querySelectorAll("fieldset.method-params").forEach(function (fs) {
      fs.hidden = !fs.classList.contains("method-" + chosen);
    });
    var family = document.getElementById("id_family");
    if (family && family.dataset.families) {
      var allowed = JSON.parse(family.dataset.families)[chosen] || [];
      Array.prototype.forEach.call(family.options, function (opt) {
        opt.hidden = opt.value !== "" && allowed.indexOf(opt.value) < 0;
      });
      if (family.selectedOptions.length && family.selectedOptions[0].hidden) { family.value = ""; }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_method");
    if (select) { select.addEventListener("change", update); }
    update();
  });
}());
