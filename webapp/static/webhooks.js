// Copy buttons: <button data-copy="ID" hidden> copies the text of the element with that id.
// A file of its own because the app's CSP forbids inline scripts. The buttons stay hidden without
// JavaScript (the text can still be selected by hand); where the Clipboard API is missing (plain http
// on another host is not a secure context), the text is selected and the user is told to press Ctrl+C.
(function () {
  "use strict";
  if (window.emailConnectorCopyButtons) {
    return; // loaded again by an HTMX swap: the listeners are already there
  }
  window.emailConnectorCopyButtons = true;

  function reveal(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function say(button, text) {
    var status = button.parentElement.querySelector("[data-copy-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    var source = document.getElementById(button.dataset.copy);
    if (!source) {
      return;
    }
    var text = source.textContent.trim();
    if (!navigator.clipboard || !window.isSecureContext) {
      selectText(source);
      say(button, "Selected: press Ctrl+C (⌘C) to copy.");
      return;
    }
    navigator.clipboard.writeText(text).then(
      function () {
        say(button, "Copied.");
      },
      function () {
        selectText(source);
        say(button, "Copying was refused: the text is selected, press Ctrl+C (⌘C).");
      }
    );
  });

  document.addEventListener("htmx:load", function (event) {
    reveal(event.detail.elt);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      reveal(document);
    });
  } else {
    reveal(document);
  }
})();
