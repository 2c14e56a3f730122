/* Loads the pt-BR catalog shared with the server and fills every [data-t] element. */
window.catalogReady = fetch("/catalog.json")
  .then(function (r) { return r.json(); })
  .then(function (catalog) {
    window.T = function (key, values) {
      var text = catalog[key] || key;
      Object.keys(values || {}).forEach(function (k) { text = text.replace("{" + k + "}", values[k]); });
      return text;
    };
    // For keys built from data (e.g. a handoff reason): the catalog's text, else `fallback`.
    window.TOr = function (key, fallback) {
      return key in catalog ? window.T(key) : fallback;
    };
    document.querySelectorAll("[data-t]").forEach(function (node) {
      node.textContent = window.T(node.getAttribute("data-t"));
    });
    document.querySelectorAll("[data-t-placeholder]").forEach(function (node) {
      node.placeholder = window.T(node.getAttribute("data-t-placeholder"));
    });
  });
