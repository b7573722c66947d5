// Starts Swagger UI on /docs (app/docs.py): the settings come from the page's data-settings attribute, so the page
// itself carries no inline script. A classic script: swagger-ui-bundle.js defines the global SwaggerUIBundle.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var settings = JSON.parse(root.getAttribute("data-settings"));
  settings.presets = [window.SwaggerUIBundle.presets.apis];
  window.ui = window.SwaggerUIBundle(settings);
})();
