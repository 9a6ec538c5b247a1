"""A student's book, under /truong/<code>/hoc-ba/ (config.urls_school)."""

from django.urls import path

from . import views_book

app_name = "transcripts_book"

urlpatterns = [
    path("<int:student_id>/", views_book.book, name="book"),
    path("<int:student_id>/tim/", views_book.book_find, name="book_find"),
]
