"""Sphinx configuration for skcharclf."""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import skcharclf

project = "skcharclf"
author = "skcharclf developers"
copyright = "2026, skcharclf developers"
release = skcharclf.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "sg_execution_times.rst"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_title = "skcharclf"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
}

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# No network access while building: cross-links to other projects are written as plain text.
intersphinx_mapping: dict = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "doc_module": ("skcharclf",),
    "reference_url": {"skcharclf": None},
    "backreferences_dir": "generated/backreferences",
}

warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")
