document.getElementById("signup-form").addEventListener("submit", function (event) {
  event.preventDefault();
  var form = event.target;
  fetch("/api/signup", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      name: form.name.value, email: form.email.value, phone: form.phone.value,
      cpf: form.cpf.value, password: form.password.value, consent: form.consent.checked
    })
  }).then(function (response) {
    return response.json().then(function (body) {
      if (response.ok) window.location.href = "/portal";
      else document.getElementById("signup-error").textContent = body.error;
    });
  });
});
