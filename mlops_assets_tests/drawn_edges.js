// The lineage edges the Dagster UI draws: each edge path of the asset graph, matched to the
// asset node its start touches (right side) and the one its arrow reaches (left side).
() => {
  const svg = document.querySelector("svg[class*=AssetGraphExplorer]");
  const nodes = [...svg.querySelectorAll("div[class*=AssetNode_assetName]")].map((name) => {
    let box = name.closest("div[class*=AssetNodeBox], div[class*=assetNodeBox]") || name.parentElement;
    const r = box.getBoundingClientRect();
    return { name: name.textContent.trim(), left: r.left, right: r.right, top: r.top, bottom: r.bottom };
  });
  const toClient = (path, length) => {
    const p = path.getPointAtLength(length);
    const m = path.getScreenCTM();
    return { x: p.x * m.a + p.y * m.c + m.e, y: p.x * m.b + p.y * m.d + m.f };
  };
  const nearest = (pt, side) => {
    let best = null, bestD = Infinity;
    for (const n of nodes) {
      const dx = Math.abs((side === "right" ? n.right : n.left) - pt.x);
      const dy = pt.y < n.top ? n.top - pt.y : pt.y > n.bottom ? pt.y - n.bottom : 0;
      const d = dx + dy;
      if (d < bestD) { bestD = d; best = n.name; }
    }
    return [best, bestD];
  };
  return [...svg.querySelectorAll(":scope > path[marker-end]")].map((path) => {
    const [src, ds] = nearest(toClient(path, 0), "right");
    const [dst, dd] = nearest(toClient(path, path.getTotalLength()), "left");
    return { src, dst, ds, dd };
  });
}
