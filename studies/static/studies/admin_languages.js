// Study and question forms: only the text boxes of the languages the study offers are shown.
(function () {
  "use strict";
  function update() {
    var boxes = document.querySelectorAll("input[name=languages]");
    if (!boxes.length) { return; }
    boxes.forEach(function (box) {
      var suffix = "__" + box.value.replace("-", "_");
      document.querySelectorAll("[class*='field-']").forEach(function (row) {
        var match = Array.prototype.some.call(row.classList, function (c) {
          return c.indexOf("field-") === 0 && c.slice(-suffix.length) === suffix && c.indexOf("__") > 0;
        });
        if (match) { row.hidden = !box.checked; }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[name=languages]").forEach(function (box) {
      box.addEventListener("change", update);
    });
    update();
  });
}());
