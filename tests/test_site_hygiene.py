"""attnbook.site_hygiene: each asset once, none from another host, MathJax only with maths."""

from __future__ import annotations

from types import SimpleNamespace

from attnbook.site_hygiene import LAYOUT_ASSETS, clean_assets, has_math, setup


def js(filename, **attributes):
    return SimpleNamespace(filename=filename, attributes=attributes)


THEBE = 'const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; const thebe_selector = ".thebe,.cell"'
PAGE = [js("_static/documentation_options.js?v=1"), js(None, body=THEBE), js(None, body=THEBE), js("_static/sphinx-thebe.js", **{"async": "async"}),
        js(None, body='window.MathJax = {"options": {}}'), js("_static/mathjax/tex-mml-chtml.js?v=1", defer="defer"),
        js("_static/scripts/fontawesome.js?v=2"), js("_static/mathjax/tex-mml-chtml.js?v=1"), js("https://cdn.example.org/x.js"),
        js("_static/copybutton.js?v=3"), js("_static/copybutton.js?v=4"), js(None, body="var a = 1; // https://example.org")]


def names(kept):
    return [k.filename or k.attributes.get("body", "")[:15] for k in kept]


def test_a_page_without_maths_keeps_each_local_asset_once_and_nothing_else():
    assert names(clean_assets(PAGE, "<p>no maths</p>", "mathjax/tex-mml-chtml.js")) == ["_static/documentation_options.js?v=1", "_static/copybutton.js?v=3"]


def test_a_page_with_maths_keeps_mathjax_once_with_its_configuration_first():
    kept = names(clean_assets(PAGE, '<span class="math notranslate">x</span>', "mathjax/tex-mml-chtml.js"))
    assert kept == ["_static/documentation_options.js?v=1", "window.MathJax ", "_static/mathjax/tex-mml-chtml.js?v=1", "_static/copybutton.js?v=3"]


def test_what_the_layout_writes_and_styles_of_thebe_are_dropped():
    assert "scripts/fontawesome.js" in LAYOUT_ASSETS
    css = [js("_static/sphinx-thebe.css?v=1"), js("_static/attnbook.css"), js("_static/attnbook.css?v=2"), js("//fonts.example.com/a.css")]
    assert names(clean_assets(css, "", "")) == ["_static/attnbook.css"]


def test_has_math_reads_the_rendered_body():
    assert has_math('<div class="math notranslate nohighlight">') and not has_math("<p>$5 and $6</p>")


def test_setup_sets_a_valid_default_mode():
    handlers = {}
    app = SimpleNamespace(connect=lambda event, fn, priority=500: handlers.setdefault(event, fn))
    assert setup(app)["parallel_read_safe"]
    config = SimpleNamespace(html_context={})
    handlers["config-inited"](app, config)
    assert config.html_context == {"default_mode": "auto"}
    config = SimpleNamespace(html_context={"default_mode": "dark"})
    handlers["config-inited"](app, config)
    assert config.html_context["default_mode"] == "dark"
