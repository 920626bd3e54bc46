// Keeps the chosen filter across the refreshes of a running batch, and closes a large
// view with Escape. The page works without it.
(function () {
  var key = "imggen-gallery-filter:" + location.pathname;
  try {
    var saved = sessionStorage.getItem(key);
    var input = saved && document.getElementById(saved);
    if (input) input.checked = true;
  } catch (e) {}
  document.addEventListener("change", function (event) {
    if (event.target.name === "filter") {
      try { sessionStorage.setItem(key, event.target.id); } catch (e) {}
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && location.hash.indexOf("#view-") === 0) location.hash = "";
  });
})();
