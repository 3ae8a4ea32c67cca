/* Small enhancements for every page (the pages work without them). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var select = document.querySelector("select[data-autosubmit]");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
})();
