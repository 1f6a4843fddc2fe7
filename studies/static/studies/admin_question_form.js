// Question form: show only the fields of the chosen response format (the Likert scale and its
// end labels, the ranking's size, the 2AFC pair design); the kind select lists them by format.
(function () {
  "use strict";
  function formatsOf(name, fields) {
    for (var key in fields) {
      if (name === key || (key.slice(-2) === "__" && name.indexOf(key) === 0)) { return fields[key]; }
    }
    return null;
  }
  function update(select) {
    var fields = JSON.parse(select.dataset.kindFields);
    var form = select.closest(".inline-related") || select.form;
    form.querySelectorAll(".form-row, .fieldBox").forEach(function (el) {
      var names = Array.prototype.filter.call(el.classList, function (c) { return c.indexOf("field-") === 0; });
      if (!names.length) { return; }
      var other = names.every(function (c) {
        var formats = formatsOf(c.slice(6), fields);
        return formats !== null && formats.indexOf(select.value) < 0;
      });
      // A field of a row of several sits in a box with its help text.
      (el.classList.contains("fieldBox") ? el.parentElement : el).classList.toggle("kind-hidden", other);
    });
  }
  function updateAll() {
    document.querySelectorAll("select[data-kind-fields]").forEach(update);
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-kind-fields]")) { update(event.target); }
  });
  document.addEventListener("formset:added", updateAll);
  document.addEventListener("DOMContentLoaded", updateAll);
}());
