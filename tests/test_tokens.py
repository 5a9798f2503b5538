"""Style tokens: one YAML file per site, validated, turned into a task and into CSS and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.css import DEFAULT_TOKENS, css_variables, load_tokens, parse_css_variables, tokens_of
from efimero.data.generate import generate_dataset
from efimero.errors import ConfigError
from efimero.schema import CSS_TASK

ROOT = Path(__file__).resolve().parents[1]
EDITORIAL = ROOT / "config" / "tokens" / "editorial.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_tokens_are_the_guides_task() -> None:
    assert CSS_TASK is DEFAULT_TOKENS.task
    assert DEFAULT_TOKENS.groups == ["density", "font", "theme"]
    assert CSS_TASK.class_target_names == ["css_class_density", "css_class_font", "css_class_theme"]
    assert CSS_TASK.regression_target_names == [
        "font_size_base", "line_height_base", "spacing_base", "border_radius_base", "color_primary_h",
        "color_primary_s", "color_primary_l", "animation_duration"]
    assert CSS_TASK.stratify_on == "css_class_theme" and CSS_TASK.regression_model == "css_variables"
    assert css_variables({"font_size_base": 16.8, "line_height_base": 1.5, "border_radius_base": 40,
                          "animation_duration": 280.4}) == {
        "--font-size-base": "1.050rem", "--line-height-base": "1.500", "--border-radius-base": "32.0px",
        "--animation-duration": "280ms"}  # clipped to its range


def test_a_sites_tokens_round_trip_through_css_in_their_own_units() -> None:
    tokens = load_tokens(EDITORIAL)
    values = {"measure": 65.0, "type_scale": 1.25, "gutter": 24.0, "fade_in": 400.0}
    css = tokens.format_variables(values)
    assert css == {"--measure": "65ch", "--type-scale": "1.250", "--gutter": "1.500rem", "--fade-in": "0.40s"}
    assert tokens.parse_variables(css) == values
    assert tokens.task.class_target_names == ["css_class_layout", "css_class_accent"]
    assert tokens.task.stratify_on == "css_class_layout"  # the first group by default
    with pytest.raises(ValueError, match="--font-size-base is not a variable of the style tokens 'editorial'"):
        tokens.parse_variables({"--font-size-base": "1rem"})
    with pytest.raises(ValueError, match="--gutter: expected a number in rem"):
        tokens.parse_variables({"--gutter": "wide"})
    assert parse_css_variables({"--spacing-base": "0.500rem"}) == {"spacing_base": 8.0}


def test_a_version_without_tokens_in_its_metadata_serves_the_default_ones() -> None:
    tokens = load_tokens(EDITORIAL)
    assert tokens_of({}) is DEFAULT_TOKENS
    metadata = {"style_tokens": tokens.to_dict()}
    assert tokens_of(metadata) == tokens and tokens_of(metadata) is tokens_of(metadata)  # parsed once


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nclasses: [{group: layout, options: [a]}]\n", "classes.0.options: Tuple should have at least 2 items"),
    ("name: x\nclasses: [{group: layout, options: [a, 1b]}]\n", "classes.0.options.1: must be a CSS class name"),
    ("name: x\nclasses: [{group: Layout, options: [a, b]}]\n", "classes.0.group: must be lower-case"),
    ("name: x\nclasses: [{group: version, options: [a, b]}]\n", "classes.0.group: must not be one of"),
    ("name: x\nvariables: [{property: --a, min: 2, max: 1}]\n", "variables.0: min must be below max. Got min 2, max 1"),
    ("name: x\nvariables: [{property: --a, min: 0, max: 1, unit: px, css_unit: s}]\n", "css_unit may only convert"),
    ("name: x\nvariables: [{property: font, min: 0, max: 1}]\n", "variables.0.property: must be a CSS custom"),
    ("name: x\nvariables: [{property: --a, min: 0, max: 1}, {property: --a, min: 0, max: 2}]\n",
     "variables: each property must be declared once. Got --a twice"),
    ("name: x\nclasses: [{group: a, options: [p, q]}]\nstratify_on: b\n", "stratify_on: must name a class group (a)"),
    ("name: x\n", "file: declare at least one class group or variable"),
    ("name: x\nvariables: [{property: --hour-of-day, min: 0, max: 1}]\n", "variables: every feature and target needs "
     "its own column name. Got hour_of_day twice"),
    ("name: x\nvariabels: []\n", "did you mean variables"),
])
def test_a_bad_token_file_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_tokens(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_generated_data_of_a_sites_tokens_is_seeded_and_follows_a_fixed_teacher() -> None:
    tokens = load_tokens(EDITORIAL)
    first, again, other = (generate_dataset(400, seed=seed, tokens=tokens) for seed in (1, 1, 2))
    assert first.equals(again) and not first.equals(other)
    assert list(first.columns) == tokens.task.columns
    assert set(first["css_class_layout"]) <= set(tokens.classes[0].options)
    for variable in tokens.variables:
        assert first[variable.target].between(variable.min, variable.max).all()
    # the relation depends on the tokens alone: the same visitors get the same noiseless targets in any chunk
    from efimero.data.generate import _teacher_targets

    features = first[tokens.task.feature_names]
    assert _teacher_targets(None, features, tokens).equals(_teacher_targets(None, features.iloc[::-1], tokens).iloc[::-1])


def test_the_cli_generates_validates_and_trains_on_a_sites_tokens(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "editorial.csv"
    generated = runner.invoke(app, ["data", "generate", "--size", "600", "--output", str(data), "--tokens",
                                    str(EDITORIAL), "--validate"])
    assert generated.exit_code == 0, generated.output
    assert "css_class_layout" in generated.output
    assert runner.invoke(app, ["data", "validate", str(data), "--tokens", str(EDITORIAL)]).exit_code == 0
    refused = runner.invoke(app, ["data", "validate", str(data)])  # efimero's own tokens: other columns
    assert refused.exit_code != 0 and "css_class_theme" in refused.output
    bad = runner.invoke(app, ["data", "validate", str(data), "--tokens", str(write(tmp_path, "name: x\n"))])
    assert bad.exit_code != 0 and "declare at least one class group or variable" in bad.output
    trained = runner.invoke(app, ["train", "--data", str(data), "--output", str(tmp_path / "models"), "--cv-folds",
                                  "0", "--tokens", str(EDITORIAL), "--json"])
    assert trained.exit_code == 0, trained.output
    from efimero.registry import Registry

    metadata = Registry(tmp_path / "models").info().metadata
    assert tokens_of(metadata) == load_tokens(EDITORIAL)
    validated = runner.invoke(app, ["validate", "--models", str(tmp_path / "models"), "--json"])
    assert '"passed": true' in validated.output, validated.output
