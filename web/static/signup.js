/* Patient sign-up: the answer is the same whether or not the e-mail or CPF had an account;
   the next step is the link mailed to the address. */
document.getElementById("signup-form").addEventListener("submit", function (event) {
  event.preventDefault();
  var form = event.target;
  var error = document.getElementById("signup-error");
  var status = document.getElementById("signup-status");
  error.textContent = "";
  status.textContent = "";
  fetch("/api/signup", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      name: form.name.value, email: form.email.value, phone: form.phone.value,
      cpf: form.cpf.value, password: form.password.value, consent: form.consent.checked
    })
  }).then(function (response) {
    return response.json().then(function (body) {
      if (response.ok) {
        form.reset();
        status.textContent = body.message;
      } else {
        error.textContent = body.error;
      }
    });
  });
});
