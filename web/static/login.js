document.getElementById("login-form").addEventListener("submit", function (event) {
  event.preventDefault();
  var error = document.getElementById("login-error");
  error.textContent = "";
  fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      email: document.getElementById("email").value,
      password: document.getElementById("password").value
    })
  }).then(function (response) {
    return response.json().then(function (body) {
      if (response.ok) window.location.href = body.role === "patient" ? "/portal" : "/staff";
      else error.textContent = body.error;
    });
  });
});
