/* JSON calls to our own API: a 401 sends the browser to the login page; other errors
   reject with the server's pt-BR message. */
window.api = function (method, path, body) {
  var options = { method: method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return fetch(path, options).then(function (response) {
    if (response.status === 401) { window.location.href = "/login"; throw new Error("401"); }
    return response.json().then(function (data) {
      if (!response.ok) throw new Error(data.error || response.statusText);
      return data;
    });
  });
};
