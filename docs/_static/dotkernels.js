// dotkernels: notebook pages get the page's full width, and a click on a figure opens the full-size image.
document.addEventListener("DOMContentLoaded", function () {
  var article = document.querySelector(".bd-article");
  if (!article) return;
  if (article.querySelector("div.nbinput, div.nboutput")) document.body.classList.add("dk-notebook");
  article.querySelectorAll("img").forEach(function (img) {
    if (img.closest("a")) return;
    var link = document.createElement("a");
    link.href = img.getAttribute("src");
    link.className = "dk-zoom";
    link.title = "open the full-size image";
    img.parentNode.insertBefore(link, img);
    link.appendChild(img);
  });
  article.querySelectorAll("table").forEach(function (table) {
    var head = table.querySelector("thead tr");
    if (head && /Name.*Signature.*Computes.*Accuracy/.test(head.textContent.replace(/\s+/g, " "))) {
      table.classList.add("api-table");
      var wrapper = document.createElement("div");
      wrapper.className = "api-table-wrapper";
      table.parentNode.insertBefore(wrapper, table);
      wrapper.appendChild(table);
    }
  });
});
