// The belteken counter for other sites. Paste where the counter should appear:
//   <script src="https://YOUR-SERVER/static/embed.js" data-campaign="SLUG" data-lang="nl" async></script>
// It inserts an iframe with the campaign's live count, served (and updated) by YOUR-SERVER.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.parentNode) {
    return;
  }
  var slug = script.getAttribute("data-campaign");
  if (!slug) {
    return;
  }
  var lang = script.getAttribute("data-lang") || "";
  var titles = {
    en: "Live signature count",
    nl: "Live teller van de handtekeningen",
    fr: "Compteur de signatures en direct"
  };
  var src = new URL("/embed/" + encodeURIComponent(slug), script.src);
  if (lang) {
    src.searchParams.set("lang", lang);
  }
  var frame = document.createElement("iframe");
  frame.src = src.href;
  frame.title = script.getAttribute("data-title") || titles[lang] || titles.en;
  frame.setAttribute("loading", "lazy");
  frame.height = "190";
  frame.style.border = "0";
  frame.style.display = "block";
  frame.style.width = "100%";
  frame.style.maxWidth = "24rem";
  script.parentNode.insertBefore(frame, script.nextSibling);
})();
