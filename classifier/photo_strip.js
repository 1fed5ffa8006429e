// The browser side of classifier.photo_strip.PhotoStrip (anywidget): thumbnails, a count, and a
// button on each thumbnail that asks the kernel to remove that photo.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "mn-strip";
  const count = document.createElement("p");
  count.className = "mn-strip-count";
  const list = document.createElement("ul");
  list.className = "mn-strip-photos";
  root.append(count, list);
  el.appendChild(root);

  function draw() {
    const photos = model.get("photos");
    const disabled = model.get("disabled");
    count.textContent = photos.length === 1 ? "1 photo" : `${photos.length || "No"} photos`;
    list.replaceChildren(...photos.map((photo) => {
      const item = document.createElement("li");
      const image = document.createElement("img");
      // Only the kernel's re-encoded JPEGs are shown.
      if (typeof photo.src === "string" && photo.src.startsWith("data:image/jpeg;base64,")) image.src = photo.src;
      image.alt = photo.name;
      image.title = photo.name;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.disabled = disabled;
      remove.setAttribute("aria-label", `Remove ${photo.name}`);
      remove.addEventListener("click", () => model.send({ type: "remove", photo: photo.id }));
      item.append(image, remove);
      return item;
    }));
  }

  model.on("change:photos", draw);
  model.on("change:disabled", draw);
  draw();
}

export default { render };
