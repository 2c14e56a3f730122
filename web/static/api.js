/* JSON calls to our own API: a 401 sends the browser to the login page; other errors
   reject with the server's pt-BR message (and its catalog key as `code`). */
window.api = function (method, path, body) {
  var options = { method: method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return fetch(path, options).then(function (response) {
    if (response.status === 401) { window.location.href = "/login"; throw new Error("401"); }
    return response.json().then(function (data) {
      if (!response.ok) {
        var error = new Error(data.error || response.statusText);
        error.code = data.code;  // the catalog key, for pages that act on a particular refusal
        throw error;
      }
      return data;
    });
  });
};
