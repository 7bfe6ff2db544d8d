// Small progressive enhancements; every page works without them. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // Times marked data-local are rendered in UTC by the server (the user chose no time zone): show them in
  // the browser's time zone, in the same form ("2026-01-31 14:05"); the title keeps the UTC time.
  function pad(value) {
    return String(value).padStart(2, "0");
  }

  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (element) {
      var when = new Date(element.getAttribute("datetime"));
      if (isNaN(when.getTime())) {
        return;
      }
      var text = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) +
        " " + pad(when.getHours()) + ":" + pad(when.getMinutes());
      if (element.getAttribute("data-local") === "seconds") {
        text += ":" + pad(when.getSeconds());
      }
      element.textContent = text;
      element.removeAttribute("data-local");
    });
    root.querySelectorAll("[data-browser-zone]").forEach(function (element) {
      element.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "unknown";
    });
  }

  // A select marked data-autosubmit opens its choice at once (its form's button is then not needed).
  function autoSubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var button = select.form && select.form.querySelector("[data-autosubmit-button]");
      if (button) {
        button.hidden = true;
      }
      select.addEventListener("change", function () {
        select.form.submit();
      });
    });
  }

  // A form marked data-busy says so while it is being sent (sending mail may take the server's time):
  // its submit button is disabled and shows the form's data-busy text, so nobody clicks twice.
  function busyForms(root) {
    root.querySelectorAll("form[data-busy]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type=submit]");
        if (button) {
          button.disabled = true;
          button.textContent = form.getAttribute("data-busy");
        }
      });
    });
  }

  // A server's port follows its protocol and security: a block marked data-ports (a JSON map of
  // "protocol:security" to the usual port) holds selects marked data-role=protocol|security and an input
  // marked data-role=port. The port changes only while it is empty or still the usual one for the old
  // choice: a port typed by hand stays.
  function portsFollow(root) {
    root.querySelectorAll("[data-ports]").forEach(function (block) {
      var ports = JSON.parse(block.getAttribute("data-ports"));
      var port = block.querySelector("[data-role=port]");
      var protocol = block.querySelector("[data-role=protocol]");
      var security = block.querySelector("[data-role=security]");
      if (!port || !security || block.hasAttribute("data-ports-ready")) {
        return;
      }
      block.setAttribute("data-ports-ready", "");
      function usual() {
        var name = protocol ? protocol.value : block.getAttribute("data-protocol");
        return String(ports[name + ":" + security.value] || "");
      }
      var before = usual();
      function follow() {
        var now = usual();
        if (port.value === "" || port.value === before) {
          port.value = now;
        }
        before = now;
      }
      security.addEventListener("change", follow);
      if (protocol) {
        protocol.addEventListener("change", follow);
      }
    });
  }

  // A file input marked data-file-into reads a small text file (a PEM certificate) into the textarea
  // whose id it names, so what was uploaded can be seen and checked before it is saved.
  function filesInto(root) {
    root.querySelectorAll("input[type=file][data-file-into]").forEach(function (input) {
      input.addEventListener("change", function () {
        var target = document.getElementById(input.getAttribute("data-file-into"));
        var file = input.files && input.files[0];
        if (!target || !file || file.size > 65536) {
          return;
        }
        file.text().then(function (text) {
          target.value = text;
        });
      });
    });
  }

  function enhance(root) {
    localTimes(root);
    autoSubmit(root);
    busyForms(root);
    portsFollow(root);
    filesInto(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
  });
  // Content swapped in by htmx (the list refreshed during a fetch, fragments).
  document.addEventListener("htmx:load", function (event) {
    localTimes(event.target);
    portsFollow(event.target);
    filesInto(event.target);
  });
})();
