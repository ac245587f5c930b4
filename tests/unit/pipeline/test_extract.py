"""Tests of `extract_page`: HTML in, `PageFacts` out, no network."""

from __future__ import annotations

import pytest

from queue_jobs.pipeline.extract import MAX_TEXT_CHARS, extract_page
from queue_jobs.pipeline.pages import CallToAction, PageFacts

URL = "https://www.acme.example/products/"

FULL_PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
  <title>  Acme
     Analytics </title>
  <meta name="Description" content="Dashboards   for teams.">
  <meta property="og:description" content="Not this one">
  <meta property="og:site_name" content="Acme">
  <meta name="keywords" content=" analytics, dashboards ,, reporting, analytics ">
  <style>.hero { color: red }</style>
  <script>var hidden = "script text";</script>
</head>
<body>
  <!-- a comment, not text -->
  <h1>Know   your numbers</h1>
  <h2>Dashboards</h2>
  <h4>Small print heading</h4>
  <h3>Dashboards</h3>
  <p>Real-time dashboards
     for every team.</p>
  <noscript>Please enable JavaScript</noscript>
  <template><p>template text</p></template>
  <svg><title>chart icon</title><text>svg text</text></svg>
  <a href="/pricing#plans">Pricing</a>
  <a href="https://blog.acme.example/post">Blog</a>
  <a href="/pricing">Pricing again</a>
  <a href="mailto:hello@acme.example">Mail</a>
</body>
</html>
"""


def ctas(body: str, url: str = URL) -> list[CallToAction]:
    return extract_page(f"<html><body>{body}</body></html>", url).ctas


# --- page fields --------------------------------------------------------------------------


def test_extracts_every_field_of_a_full_page() -> None:
    facts = extract_page(FULL_PAGE, URL)
    assert facts.url == URL
    assert facts.title == "Acme Analytics"
    assert facts.description == "Dashboards for teams."
    assert facts.site_name == "Acme"
    assert facts.headings == ["Know your numbers", "Dashboards"]
    assert facts.keywords == ["analytics", "dashboards", "reporting"]
    assert facts.language == "en-GB"
    assert facts.links == [
        "https://www.acme.example/pricing",
        "https://blog.acme.example/post",
    ]
    assert facts.text == (
        "Know your numbers Dashboards Small print heading Dashboards "
        "Real-time dashboards for every team. Pricing Blog Pricing again Mail"
    )


@pytest.mark.parametrize(
    "hidden",
    ["script text", "color: red", "a comment", "enable JavaScript", "template text", "svg text",
     "chart icon", "Acme Analytics"],
)  # fmt: skip
def test_text_leaves_out_invisible_content(hidden: str) -> None:
    assert hidden not in extract_page(FULL_PAGE, URL).text


def test_title_falls_back_to_og_title_then_h1_then_host() -> None:
    og = '<head><meta property="og:title" content="OG title"></head><h1>Heading</h1>'
    assert extract_page(og, URL).title == "OG title"
    assert extract_page("<title> </title><h1></h1><h1>Heading  one</h1>", URL).title == (
        "Heading one"
    )
    assert extract_page("<p>no title</p>", URL).title == "www.acme.example"


def test_title_ignores_svg_titles() -> None:
    assert extract_page("<body><svg><title>icon</title></svg></body>", URL).title == (
        "www.acme.example"
    )


def test_description_falls_back_to_og_description() -> None:
    html = '<meta property="og:description" content="From OG">'
    assert extract_page(html, URL).description == "From OG"
    assert extract_page("<p>nothing</p>", URL).description == ""


def test_og_tags_written_as_name_attributes_count_too() -> None:
    html = '<meta name="og:site_name" content="Named Site">'
    assert extract_page(html, URL).site_name == "Named Site"


def test_site_name_falls_back_to_the_host_without_www() -> None:
    assert extract_page("<p>x</p>", "https://www.shop.example/a").site_name == "shop.example"
    assert extract_page("<p>x</p>", "https://WWW2.Shop.example/").site_name == "www2.shop.example"


def test_headings_are_capped_at_30() -> None:
    html = "".join(f"<h2>Heading {i}</h2>" for i in range(40))
    headings = extract_page(html, URL).headings
    assert headings == [f"Heading {i}" for i in range(30)]


def test_text_is_capped() -> None:
    html = "<p>" + "word " * (MAX_TEXT_CHARS // 2) + "</p>"
    text = extract_page(html, URL).text
    assert len(text) <= MAX_TEXT_CHARS
    assert len(text) >= MAX_TEXT_CHARS - 5
    assert text.startswith("word word")


def test_keywords_fall_back_to_frequent_words() -> None:
    # "zebra" 3x, "apple"/"mango" 2x (tie: alphabetical), stop words and short words ignored.
    html = """<meta name="keywords" content=" , ">
    <p>Zebra zebra ZEBRA mango apple apple mango with with with with that that that the
    the the the cat cat cat cat 2024 2024 2024 2024 données</p>"""
    assert extract_page(html, URL).keywords == ["zebra", "apple", "mango", "données"]


def test_frequent_words_are_limited_to_ten() -> None:
    words = ["".join(chr(97 + (i + j) % 26) for j in range(5)) for i in range(12)]
    html = "<p>" + " ".join(w for i, w in enumerate(words) for _ in range(20 - i)) + "</p>"
    assert extract_page(html, URL).keywords == words[:10]


def test_links_are_absolute_http_deduplicated_and_capped() -> None:
    anchors = "".join(f'<a href="/page/{i}">p</a>' for i in range(120))
    html = (
        '<a href="javascript:alert(1)">js</a><a href="tel:123">tel</a><a href="">empty</a>'
        '<a href="../up">up</a><a href="#top">top</a><a href="//cdn.example/x">cdn</a>'
        '<a href="../up#again">up</a><a href="http://[broken">bad</a>' + anchors
    )
    links = extract_page(html, URL).links
    assert links[:3] == [
        "https://www.acme.example/up",
        URL,
        "https://cdn.example/x",
    ]
    assert len(links) == 100
    assert links[-1] == "https://www.acme.example/page/96"


def test_base_href_is_honoured() -> None:
    html = '<head><base href="https://other.example/dir/"></head><a href="x">x</a>'
    assert extract_page(html, URL).links == ["https://other.example/dir/x"]


def test_language_is_empty_without_lang() -> None:
    assert extract_page("<html><p>x</p></html>", URL).language == ""


def test_is_deterministic_and_round_trips_as_json() -> None:
    first = extract_page(FULL_PAGE + "<a class='btn' href='/go'>Go</a>", URL)
    assert extract_page(FULL_PAGE + "<a class='btn' href='/go'>Go</a>", URL) == first
    assert PageFacts.from_dict(first.to_dict()) == first


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<<<>>>",
        "\x00\x01 binary \xff junk",
        "<div><p>unclosed <b>bold <a href='/x'>Sign up</div></span>&nbsp;&bogus;",
        "<html><head><title>Only head",
        "</html></body><h1>after the end</h1><button>Buy now",
    ],
)
def test_survives_broken_html(html: str) -> None:
    facts = extract_page(html, URL)
    assert facts.title
    assert facts.url == URL


def test_broken_html_still_yields_content() -> None:
    html = "<div><h2>Offer<p>Cheap <b>stuff <a href='/x' class=button>Sign up</div></span>"
    facts = extract_page(html, URL)
    assert facts.headings[0].startswith("Offer")
    assert "Cheap stuff Sign up" in facts.text
    assert facts.ctas == [
        CallToAction("Sign up", "https://www.acme.example/x", "button")
    ]


# --- calls to action ----------------------------------------------------------------------


def test_buttons_and_submit_inputs_take_their_forms_action() -> None:
    found = ctas(
        '<form action="/subscribe"><input type="email" value="you@x">'
        '<input type="submit" value="Join the list"><button> Send\n now </button></form>'
        '<button type="button">Menu</button>'
        '<form><input type="BUTTON" value="No action"></form>'
        '<button type="reset">Reset</button>'
        '<input type="submit">'
    )
    assert found == [
        CallToAction("Join the list", "https://www.acme.example/subscribe", "button"),
        CallToAction("Send now", "https://www.acme.example/subscribe", "button"),
        CallToAction("Menu", "", "button"),
        CallToAction("No action", "", "button"),
    ]


def test_button_form_attribute_and_formaction() -> None:
    found = ctas(
        '<form id="f" action="https://forms.example/a"></form>'
        '<button form="f">Outside</button>'
        '<form action="/a"><button formaction="/b">Override</button></form>'
    )
    assert found == [
        CallToAction("Outside", "https://forms.example/a", "button"),
        CallToAction("Override", "https://www.acme.example/b", "button"),
    ]


@pytest.mark.parametrize(
    "attributes",
    ['class="btn btn-primary"', 'class="CTA"', 'class="hero__cta"', 'class="primaryButton"',
     'class="wp-block-button__link"', 'role="button"', 'class="ctaLink"'],
)  # fmt: skip
def test_button_styled_links_are_buttons(attributes: str) -> None:
    assert ctas(f'<a {attributes} href="/more">Learn more</a>') == [
        CallToAction("Learn more", "https://www.acme.example/more", "button")
    ]


@pytest.mark.parametrize(
    "attributes", ['class="spectacular"', 'class="dictation"', 'class="nav-link"', ""]
)
def test_plain_links_without_a_cta_phrase_are_not_ctas(attributes: str) -> None:
    assert ctas(f'<a {attributes} href="/more">Learn more</a>') == []


@pytest.mark.parametrize(
    "text",
    ["Book a demo", "Get started", "Sign up", "Signup today", "Start free trial",
     "Start your free trial", "Contact us", "Request a quote", "Buy now", "Subscribe",
     "Try Acme free", "Try it for free", "GET STARTED →"],
)  # fmt: skip
def test_cta_phrases_make_links_ctas(text: str) -> None:
    assert ctas(f'<a href="https://acme.example/go">{text}</a>') == [
        CallToAction(text, "https://acme.example/go", "link")
    ]


@pytest.mark.parametrize(
    "text",
    ["Learn more", "Read our blog", "Signs of trouble", "Trying times",
     "Why thousands of teams sign up for Acme every single month and stay"],
)  # fmt: skip
def test_other_link_texts_are_not_ctas(text: str) -> None:
    assert ctas(f'<a href="/x">{text}</a>') == []


def test_skips_javascript_and_empty_text() -> None:
    assert ctas(
        '<a class="btn" href="javascript:void(0)">Get started</a>'
        '<a class="btn" href=" JavaScript:go()">Go</a>'
        '<a class="btn" href="java\tscript:go()">Go</a>'
        '<a class="btn" href="/x"> </a>'
        '<a href="/y"><img src="logo.png"></a>'
        "<button>   </button>"
        '<input type="submit" value="">'
    ) == []


def test_icon_only_elements_use_their_aria_label() -> None:
    assert ctas('<a class="btn" href="/cart" aria-label="Open cart"><svg></svg></a>') == [
        CallToAction("Open cart", "https://www.acme.example/cart", "button")
    ]


def test_button_styled_link_without_href_is_a_button_without_link() -> None:
    assert ctas('<a class="btn">Open menu</a><a>Sign up</a>') == [
        CallToAction("Open menu", "", "button")
    ]


def test_button_inside_a_link_counts_once_as_the_link() -> None:
    assert ctas('<a href="/trial"><button>Learn how</button></a>') == [
        CallToAction("Learn how", "https://www.acme.example/trial", "button")
    ]


def test_ctas_are_in_document_order_deduplicated_and_capped() -> None:
    body = (
        '<a href="/signup">Sign up</a>'
        '<a class="btn" href="/signup">Sign up</a>'  # same (text, href): dropped
        '<a href="/signup2">Sign up</a>'
        "<button>Go</button>"
        + "".join(f'<a class="btn" href="/p{i}">Option {i}</a>' for i in range(20))
    )
    found = ctas(body)
    assert len(found) == 10
    assert found[:4] == [
        CallToAction("Sign up", "https://www.acme.example/signup", "link"),
        CallToAction("Sign up", "https://www.acme.example/signup2", "link"),
        CallToAction("Go", "", "button"),
        CallToAction("Option 0", "https://www.acme.example/p0", "button"),
    ]
    assert found[-1].text == "Option 6"


def test_cta_text_is_collapsed_and_capped() -> None:
    long_text = "Get started " + "now " * 40
    (cta,) = ctas(f'<a class="btn" href="/x">  {long_text}  </a>')
    assert len(cta.text) <= 80
    assert cta.text.startswith("Get started now now")
    assert "  " not in cta.text and not cta.text.endswith(" ")


def test_ctas_in_invisible_markup_are_ignored() -> None:
    assert ctas('<template><a class="btn" href="/x">Buy now</a></template>'
                '<noscript><a class="btn" href="/y">Buy now</a></noscript>') == []  # fmt: skip
